import { runMatrix } from './suites.js';

runMatrix(1);
