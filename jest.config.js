/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Type checking is `npm run build`'s job; jest only transpiles.
    '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true } }],
  },
  // Map iterations stop after a failure, as in Step Functions (rig/map-limit.ts).
  moduleNameMapper: { '^p-limit$': '<rootDir>/rig/map-limit.js' },
  setupFiles: ['<rootDir>/test/helpers/setup.ts'],
  testTimeout: 60000,
  // One suite at a time: each rig suite runs nine nodes of etcd, Patroni and
  // PostgreSQL, and two rigs on this 2-core machine starve each other's HA
  // loops (a leader missing its DCS renewal during the root rollover's etcd
  // restarts, seen in CI with the rig suites side by side).
  maxWorkers: 1,
};
