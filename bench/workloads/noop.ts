/** Does nothing: measures the cost of a round trip through a pool. */
export default function noop(input: unknown): unknown {
  return input;
}
