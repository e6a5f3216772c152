// The matrix's suites, for a number of threads (each *.test.ts file here runs one of them).
import { afterEach, describe, it } from 'vitest';
import { closeTroupes, openTroupe } from '../runtime/helpers.js';
import { CANCELS, cancelCell } from './cancel-cells.js';
import { TASK_FAULTS, TASK_PLACES, taskCell } from './matrix.js';
import { RUN_FAULTS, RUN_PLACES, runCell } from './run-cells.js';

const threadsName = (threads: number) => `${threads} thread${threads === 1 ? '' : 's'}`;

export function taskMatrix(threads: number): void {
  afterEach(closeTroupes);
  describe(`task faults, ${threadsName(threads)}`, () => {
    for (const fault of TASK_FAULTS)
      describe(fault.name, () => {
        for (const place of TASK_PLACES)
          it(place, () => taskCell(openTroupe, threads, fault, place));
      });
  });
}

export function cancelMatrix(threads: number): void {
  afterEach(closeTroupes);
  describe(`cancels, ${threadsName(threads)}`, () => {
    for (const cancel of CANCELS)
      describe(cancel.name, () => {
        for (const place of TASK_PLACES)
          it(place, () => cancelCell(openTroupe, threads, cancel, place));
      });
  });
}

export function runMatrix(threads: number): void {
  afterEach(closeTroupes);
  describe(`faults outside handlers, ${threadsName(threads)}`, () => {
    for (const fault of RUN_FAULTS)
      describe(fault.name, () => {
        for (const place of RUN_PLACES) it(place, () => runCell(openTroupe, threads, fault, place));
      });
  });
}
