/**
 * aws-local-stepfunctions 3 uses Promise.withResolvers (Node 22); Node 20
 * lacks it. Load this before that module.
 */
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

const promiseConstructor = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> };
if (typeof promiseConstructor.withResolvers !== 'function') {
  promiseConstructor.withResolvers = <T>(): Resolvers<T> => {
    let resolve!: Resolvers<T>['resolve'];
    let reject!: Resolvers<T>['reject'];
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

// Outside jest (which maps the module instead), patch p-limit in the require
// cache before aws-local-stepfunctions captures it: see map-limit.ts.
if (!process.env.JEST_WORKER_ID) {
  const path = require.resolve('p-limit');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('p-limit');
  const cached = require.cache[path];
  if (cached && !(cached as { pemHaPatched?: boolean }).pemHaPatched) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { stopAfterFailure } = require('./map-limit.js') as {
      stopAfterFailure: (pLimit: unknown) => unknown;
    };
    cached.exports = stopAfterFailure(cached.exports);
    (cached as { pemHaPatched?: boolean }).pemHaPatched = true;
  }
}
