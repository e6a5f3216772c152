/** Spins the CPU for `input.ms` milliseconds (0: returns at once): a subtask of a known length. */
export default function spin(input: { ms: number }): number {
  const end = performance.now() + input.ms;
  let i = 0;
  while (performance.now() < end) i++;
  return i;
}
