import { checkRunbookInput, RUNBOOK_INPUTS } from '../../functions/lib/runbook-inputs';
import { definitionIn, execute, failureOf, fakeCluster } from '../helpers/fake-runbook';
import { resourcesOf, synthStack } from '../helpers/synth';

const { template } = synthStack();
const json = template.toJSON() as {
  Outputs: Record<string, { Value: { Ref: string } }>;
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
};

/** The runbooks whose input the check-input function checks, by stack output. */
const CHECKED = [
  ['BootstrapStateMachineArn', 'bootstrap'],
  ['RotationStateMachineArn', 'rotation'],
  ['RootRolloverStateMachineArn', 'root-rollover'],
  ['BackupStateMachineArn', 'backup'],
  ['BackupHealthStateMachineArn', 'backup-health'],
  ['AgentCertificateStateMachineArn', 'agent-certificate'],
] as const;

describe('runbook input, checked before anything is touched', () => {
  test('Given the check-input rules, then they cover exactly the runbooks that check input in their first state', () => {
    expect(CHECKED.map(([, runbook]) => runbook).sort()).toEqual(
      Object.keys(RUNBOOK_INPUTS).sort(),
    );
  });

  test.each(CHECKED)(
    'Given %s, then its first state hands the execution input, as given, to the check-input function as %s',
    (output, runbook) => {
      const definition = definitionIn(template, output);
      const first = definition.States[definition.StartAt] as {
        Parameters: { FunctionName: string; Payload: unknown };
        Catch?: unknown;
      };
      expect(definition.StartAt).toBe('Check input');
      expect(first.Parameters.FunctionName).toMatch(/function:RunbooksCheckInput/);
      expect(first.Parameters.Payload).toEqual({ runbook, 'input.$': '$' });
      // Nothing to clean up yet: the run fails with the function's own error.
      expect(first.Catch).toBeUndefined();
    },
  );

  test.each(CHECKED)(
    'Given %s started with a field it does not take, then it fails with InvalidInputError naming the field, touching no node',
    async (output, runbook) => {
      const cluster = fakeCluster();
      const example = JSON.parse(RUNBOOK_INPUTS[runbook].example) as Record<string, unknown>;
      const error = await failureOf(
        execute(definitionIn(template, output), cluster, { ...example, dryRun: true }),
      );
      expect(error.name).toBe('InvalidInputError');
      expect(error.message).toMatch(new RegExp(`^unknown field "dryRun": the ${runbook} runbook`));
      expect(cluster.sent).toEqual([]);
    },
  );

  test('Given every schedule and deploy-time run of a checked runbook, then the input it starts with passes the check', () => {
    const checkedBy = new Map(
      CHECKED.map(([output, runbook]) => [json.Outputs[output].Value.Ref, runbook]),
    );
    const starts: [string, unknown][] = [];
    for (const rule of Object.values(resourcesOf(template, 'AWS::Events::Rule'))) {
      for (const target of (rule.Properties.Targets ?? []) as {
        Arn: { Ref?: string };
        Input?: string;
      }[]) {
        const runbook = checkedBy.get(target.Arn.Ref ?? '');
        if (runbook)
          starts.push([runbook, target.Input === undefined ? undefined : JSON.parse(target.Input)]);
      }
    }
    for (const resource of Object.values(json.Resources)) {
      const properties = resource.Properties ?? {};
      const arn = properties.StateMachineArn as { Ref?: string } | undefined;
      const runbook = resource.Type.startsWith('Custom::') && checkedBy.get(arn?.Ref ?? '');
      if (runbook)
        starts.push([runbook, JSON.parse((properties.Input as string | undefined) ?? '{}')]);
    }
    // the rotation and backup schedules, the backup health check, the bootstrap on deploy
    expect(starts.map(([runbook]) => runbook).sort()).toEqual([
      'backup',
      'backup',
      'backup-health',
      'bootstrap',
      'rotation',
    ]);
    for (const [runbook, input] of starts) {
      expect(() => checkRunbookInput(runbook, input)).not.toThrow();
    }
  });
});
