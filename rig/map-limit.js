// Step Functions starts no further Map iteration (or Parallel branch) once
// one has failed; aws-local-stepfunctions 3 queues them in p-limit and still
// starts them after the failure, which on the rig would touch a node the real
// runbook never reaches. stopAfterFailure wraps p-limit so that a queued task
// that has not started is refused once an earlier one failed.
//
// Plain CommonJS: jest maps the bare `p-limit` here (moduleNameMapper) for a
// module inside node_modules, which it does not transform; outside jest,
// rig/polyfills.ts patches the require cache with the same function.
'use strict';

function stopAfterFailure(pLimit) {
  return (concurrency) => {
    const limit = pLimit(concurrency);
    let failed = false;
    const limited = (task, ...args) =>
      limit(async () => {
        if (failed) throw new Error('not started: an earlier iteration failed');
        try {
          return await task(...args);
        } catch (error) {
          failed = true;
          throw error;
        }
      });
    return Object.defineProperties(limited, {
      activeCount: { get: () => limit.activeCount },
      pendingCount: { get: () => limit.pendingCount },
      clearQueue: { value: () => limit.clearQueue() },
    });
  };
}

// Under jest this file is what `p-limit` resolves to; the real module is
// required by its file, which the mapper does not rewrite.
// eslint-disable-next-line @typescript-eslint/no-require-imports
module.exports = Object.assign(stopAfterFailure(require('p-limit/index.js')), {
  stopAfterFailure,
});
