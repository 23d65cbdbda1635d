import { resourcesOf, synthStack } from '../helpers/synth';

/** MAX_LAG_BYTES of each Lambda function that sets it, by logical id (hash dropped). */
function maxLagSettings(settings: Record<string, unknown> = {}) {
  const { template } = synthStack(settings);
  return Object.fromEntries(
    Object.entries(resourcesOf(template, 'AWS::Lambda::Function'))
      .map(([id, fn]) => [
        id.replace(/[0-9A-F]{8}$/, ''),
        (fn.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)
          ?.Variables?.MAX_LAG_BYTES,
      ])
      .filter(([, value]) => value !== undefined),
  );
}

describe('the runbook lag bound in the template', () => {
  test('Given the defaults, then the cluster-status and upgrade functions both bound replica lag by replicaMaxLagBytes', () => {
    expect(maxLagSettings()).toEqual({
      RunbooksClusterStatusFunction: '16777216',
      RollingUpgradeUpgradeStepsFunction: '16777216',
    });
  });

  test('Given replicaMaxLagBytes, then both functions get the same value (the rig runs them in one process)', () => {
    expect(maxLagSettings({ replicaMaxLagBytes: '4194304' })).toEqual({
      RunbooksClusterStatusFunction: '4194304',
      RollingUpgradeUpgradeStepsFunction: '4194304',
    });
  });
});
