import { taskMatrix } from './suites.js';

taskMatrix(2);
