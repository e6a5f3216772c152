// The file Piscina starts each thread with. Piscina require()s its worker file before it tries
// import(); on Node 20.19+ require() of an ES module builds a facade module, and a thread
// terminated while that facade is being linked aborts the whole process (a failed assertion in
// node::loader::ModuleWrap::CreateRequiredModuleFacade): a troupe closed while its threads
// still boot did that. This entry is CommonJS, so require() takes the plain path, and it loads
// the real worker (./worker.js) with import(), which a terminated thread simply abandons.
// Piscina awaits `default` once per thread: no cost per task.
module.exports = {
  __esModule: true,
  // Piscina swallows a rejection here and reports "no handler" instead: a worker that fails to
  // load answers every task with its real error.
  default: import('./worker.js').then(
    (worker) => worker.default,
    (error: unknown) => () => {
      throw error;
    },
  ),
};
