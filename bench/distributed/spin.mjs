// Spins the CPU for `input.ms` (0: returns at once).
export default function spin(input) {
  const end = performance.now() + input.ms;
  let i = 0;
  while (performance.now() < end) i++;
  return i;
}
