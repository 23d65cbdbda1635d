/** What both projects share. */
const common = {
  testEnvironment: 'node',
  transform: {
    // Type checking is `npm run build`'s job; jest only transpiles.
    '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true } }],
  },
  // Map iterations stop after a failure, as in Step Functions (rig/map-limit.ts).
  moduleNameMapper: { '^p-limit$': '<rootDir>/rig/map-limit.js' },
  setupFiles: ['<rootDir>/test/helpers/setup.ts'],
  // Removes the cloud assemblies the suite's CDK apps wrote (test/helpers/cdk-out.ts).
  setupFilesAfterEnv: ['<rootDir>/test/helpers/cdk-out.ts'],
};

/** @type {import('jest').Config} */
module.exports = {
  // Read from here, not from the projects: jest-circus takes the global value.
  testTimeout: 60000,
  // Each test's name and time in the output: CI's log says where its minutes go.
  verbose: true,
  // Every core: the unit suites synthesize the app (CPU-bound); Jest's
  // default leaves one core idle, and on 2 cores that means no parallelism.
  maxWorkers: '100%',
  projects: [
    {
      ...common,
      displayName: 'unit',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/rig/'],
    },
    {
      ...common,
      // One suite at a time: each rig suite runs nine nodes of etcd, Patroni
      // and PostgreSQL, and two rigs on a 2-core machine starve each other's
      // HA loops (a leader missing its DCS renewal during the root rollover's
      // etcd restarts, seen in CI with the rig suites side by side); they also
      // share namespace names. `npm test` (scripts/test.sh) runs the unit
      // suites beside this project only at nice 19.
      // A runner whose isSerial is true gets the suites one after another in
      // Jest's main process; Jest runs each runner's group of suites only
      // after the previous group has finished and its workers have exited.
      displayName: 'rig',
      roots: ['<rootDir>/test/rig'],
      testMatch: ['**/*.test.ts'],
      runner: '<rootDir>/test/helpers/serial-runner.ts',
    },
  ],
};
