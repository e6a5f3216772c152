/**
 * `troupe bench --help`: a module of its own, so that the command line shows it without loading
 * the suites, and the suites' runner quotes it without importing the command line.
 */
export const BENCH_USAGE = `Usage: troupe bench [--scope speedup,scaling,audit,dag,pool,runtime,messaging,user,distributed|all]
                    [--threads 1,2,4] [--rounds N] [--quick] [--suite file.js]
                    [--json] [--out file.json] [--chart file.svg]
       troupe bench --compare old.json new.json

Measures the parallel-over-sequential factor and troupe's overheads with tinybench: rounds of
interleaved variants, ratios per round, reported as the median and min–max of those ratios.
Progress goes to stderr; the table (or, with --json, one JSON document) to stdout.

Options:
  --scope <list>      suites, comma-separated, or all (speedup, scaling, audit, dag, pool,
                      runtime, messaging) [default: all; user with --suite]; distributed (the Redis
                      executor against the local pool: needs redis-server and the bullmq and
                      ioredis peers) is not part of all
  --threads <list>    thread counts for the speedup suite, e.g. 1,2,4 [default: the cores]
  --rounds <n>        interleaved rounds [default: 9; 3 with --quick]
  --quick             fewer rounds and smaller sizes: a smoke run
  --suite <file>      your own suite: a module exporting experts, plan and input (scope user)
  --json              one JSON document on stdout (every sample, the machine) and nothing else
  --out <file>        also write that JSON document to a file
  --chart <file.svg>  an SVG chart of the factor against threads (scaling or speedup results)
  --compare           compare two JSON documents (old, new): flags changes beyond the noise
  -h, --help          show this help

Do not run other heavy work on the machine while benchmarking: results carry the CPU time the
rest of the machine used, and a run others loaded is marked "contended".`;
