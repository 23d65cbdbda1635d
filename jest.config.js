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
};
