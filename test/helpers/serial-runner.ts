/**
 * Jest's own test runner, marked serial, for the rig project (jest.config.js):
 * @jest/core's TestScheduler hands each runner `{ serial: runInBand ||
 * testRunner.isSerial }`, and jest-runner runs a serial group's suites one
 * after another in Jest's main process instead of in the worker pool.
 */
import TestRunner from 'jest-runner';

export default class SerialTestRunner extends TestRunner {
  override readonly isSerial = true;
}
