/**
 * The rig suites of the rig-beside project: the upgrade suite's Debian 12
 * rig, and the suites that bring up no cluster at all (the SSM agent, the
 * local AWS APIs, the load balancer stand-ins).
 */
const BESIDE_SUITES = [
  'test/rig/upgrade.test.ts',
  'test/rig/ssm-agent.test.ts',
  'test/rig/local-aws.test.ts',
  'test/rig/nlb.test.ts',
  'test/rig/alb-and-filters.test.ts',
];

/** What every project shares. */
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
      // and PostgreSQL, and on a 2-core machine a second cluster rig beside
      // the cluster suite, even at nice 10 (the rotation suite, in CI), made
      // its etcd quorum and redeploy tests miss their bounds. A runner whose
      // isSerial is true gets the suites one after another in Jest's main
      // process; Jest runs each runner's group of suites only after the
      // previous group has finished.
      displayName: 'rig',
      roots: ['<rootDir>/test/rig'],
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...BESIDE_SUITES],
      runner: '<rootDir>/test/helpers/serial-runner.ts',
    },
    {
      ...common,
      // `npm test` (scripts/test.sh) runs these one at a time beside the rig
      // project at nice 10: their processes and nodes (which inherit the
      // priority) take the CPU the cluster rig leaves idle and never starve
      // it. The upgrade suite asserts on outcomes (what halts, what is lost,
      // which versions run) with Patroni's standard timing.
      displayName: 'rig-beside',
      roots: ['<rootDir>/test/rig'],
      testMatch: BESIDE_SUITES.map((suite) => `<rootDir>/${suite}`),
      runner: '<rootDir>/test/helpers/serial-runner.ts',
    },
  ],
};
