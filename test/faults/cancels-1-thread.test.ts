import { cancelMatrix } from './suites.js';

cancelMatrix(1);
