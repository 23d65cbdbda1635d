import { Match } from 'aws-cdk-lib/assertions';
import { allStates } from '../../rig/lambdas';
import { definitionIn, execute, fakeCluster } from '../helpers/fake-runbook';
import { ROTATION_HOLDS_LOCK } from '../helpers/fake-lock';
import { resourcesOf, synthStack } from '../helpers/synth';

type Statement = { Action: string | string[]; Resource: unknown };
type Machine = { Properties: { DefinitionString: unknown } };

/** Every runbook that changes nodes, by the output naming it, and the name it holds the lock under. */
const GUARDED: [output: string, runbook: string][] = [
  ['BootstrapStateMachineArn', 'bootstrap'],
  ['RotationStateMachineArn', 'rotation'],
  ['RootRolloverStateMachineArn', 'root-rollover'],
  ['UpgradeStateMachineArn', 'upgrade'],
  ['BackupStateMachineArn', 'backup'],
  ['RestoreStateMachineArn', 'restore'],
  ['ReplacementStateMachineArn', 'replacement'],
  ['FailoverStateMachineArn', 'failover'],
];

// One synthesis for every test here.
const { template } = synthStack();
const definitionOf = (output: string) => definitionIn(template, output);

describe('one runbook at a time, in the template', () => {
  const json = template.toJSON() as {
    Outputs: Record<string, { Value: { Ref: string } }>;
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const machineOf = (output: string) => json.Outputs[output].Value.Ref;
  const lockFunction = Object.keys(resourcesOf(template, 'AWS::Lambda::Function')).find((id) =>
    id.startsWith('RunbooksLockFunction'),
  )!;

  test.each(GUARDED)(
    'Given %s, then its first state after the input check takes the lock as %s for as long as the state machine may run',
    (output, runbook) => {
      const definition = definitionOf(output);
      const lockState =
        definition.StartAt === 'Check input'
          ? String(definition.States['Check input'].Next)
          : definition.StartAt;
      const first = definition.States[lockState] as {
        Parameters: { FunctionName: string; Payload: Record<string, unknown> };
      };

      expect(lockState).toBe('Take the runbook lock');
      expect(first.Parameters.FunctionName).toContain(`function:${lockFunction}`);
      expect(first.Parameters.Payload).toEqual({
        action: 'acquire',
        runbook,
        'execution.$': '$$.Execution.Id',
        holdSeconds: definition.TimeoutSeconds,
      });
    },
  );

  test('Given the backup health runbook (read-only, every 5 minutes), then it takes no lock', () => {
    const definition = definitionOf('BackupHealthStateMachineArn');
    expect(JSON.stringify(definition)).not.toContain(lockFunction);
  });

  test('Given any guarded execution ending, however it ends, then one rule hands its ARN to the lock function to release', () => {
    const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule')).filter((rule) =>
      JSON.stringify(rule.Properties.Targets).includes(lockFunction),
    );
    expect(rules).toHaveLength(1);
    const { EventPattern, Targets } = rules[0].Properties as {
      EventPattern: { detail: { status: string[]; stateMachineArn: { Ref: string }[] } };
      Targets: {
        InputTransformer: { InputPathsMap: Record<string, string>; InputTemplate: string };
      }[];
    };
    expect(EventPattern.detail.status.sort()).toEqual([
      'ABORTED',
      'FAILED',
      'SUCCEEDED',
      'TIMED_OUT',
    ]);
    expect(EventPattern.detail.stateMachineArn.map((arn) => arn.Ref).sort()).toEqual(
      GUARDED.map(([output]) => machineOf(output)).sort(),
    );
    const { InputPathsMap, InputTemplate } = Targets[0].InputTransformer;
    expect(Object.values(InputPathsMap)).toEqual(['$.detail.executionArn']);
    expect(JSON.parse(InputTemplate.replace(/<[^>]+>/, '"arn"'))).toEqual({
      action: 'release',
      execution: 'arn',
    });
  });

  test("Given the lock function, then it writes only the lock table and reads only the guarded runbooks' executions", () => {
    const statements = Object.entries(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter(([, policy]) =>
        JSON.stringify(policy.Properties.Roles).includes('RunbooksLockFunctionRole'),
      )
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const table = Object.keys(resourcesOf(template, 'AWS::DynamoDB::Table'))[0];

    const writes = statements.filter((s) =>
      [s.Action].flat().some((a) => a.startsWith('dynamodb:')),
    );
    expect(writes.flatMap((s) => [s.Action].flat()).sort()).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:PutItem',
    ]);
    expect(JSON.stringify(writes.map((s) => s.Resource))).toContain(table);
    const reads = statements.filter((s) => [s.Action].flat().includes('states:DescribeExecution'));
    const readable = JSON.stringify(reads.map((s) => s.Resource));
    for (const [output] of GUARDED) expect(readable).toContain(machineOf(output));
    expect(readable).not.toContain(machineOf('BackupHealthStateMachineArn'));
    expect(readable).not.toContain('"*"');
  });

  test("Given the lock table, then it is encrypted with the stack's key and expires its item", () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: {
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SecretsKey'), 'Arn'] },
      },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });

  test('Given the bootstrap custom resource, then it waits at least as long as the bootstrap state machine may run', () => {
    const bootstrapTimeout = Number(definitionOf('BootstrapStateMachineArn').TimeoutSeconds);
    // The Provider framework's waiter retries isComplete: its attempts bound the wait.
    const waiter = Object.values(resourcesOf(template, 'AWS::StepFunctions::StateMachine'))
      .map((m) => JSON.stringify((m as Machine).Properties.DefinitionString))
      .find((text) => text.includes('framework-isComplete-task'))!;
    const retry = /\\"IntervalSeconds\\":(\d+),\\"MaxAttempts\\":(\d+),\\"BackoffRate\\":1/.exec(
      waiter,
    )!;
    expect(Number(retry[1]) * Number(retry[2])).toBeGreaterThanOrEqual(bootstrapTimeout);
  });
});

describe('steps that act are never repeated blindly', () => {
  test.each(GUARDED)(
    'Given %s, then no command send and no switchover is retried on a Lambda service error, and every read is',
    (output) => {
      const tasks = allStates(definitionOf(output).States).filter(([, s]) => s.Type === 'Task');
      const retriedOnServiceErrors = (state: Record<string, unknown>) =>
        ((state.Retry ?? []) as { ErrorEquals: string[] }[]).some((r) =>
          r.ErrorEquals.includes('Lambda.ServiceException'),
        );
      const acting = tasks.filter(([name]) => /: send$|switch over$/.test(name));

      expect(acting.length).toBeGreaterThan(0);
      expect(acting.filter(([, state]) => retriedOnServiceErrors(state))).toEqual([]);
      expect(
        tasks.filter(([name]) => /: poll$/.test(name)).every(([, s]) => retriedOnServiceErrors(s)),
      ).toBe(true);
    },
  );
});

describe('one runbook at a time, run (synthesized definitions, aws-local-stepfunctions)', () => {
  test.each(GUARDED.filter(([, runbook]) => runbook !== 'upgrade'))(
    'Given a running rotation holds the lock, when %s starts, then it ends with RunbookAlreadyRunningError naming the rotation, and no node is sent anything',
    async (output) => {
      const cluster = fakeCluster({ lockHeldBy: ROTATION_HOLDS_LOCK });
      const input =
        output === 'BackupStateMachineArn'
          ? { type: 'full' }
          : output === 'RestoreStateMachineArn'
            ? { confirm: 'pem-ha', latest: true }
            : output === 'ReplacementStateMachineArn'
              ? { node: 'backend-2' }
              : {};

      const error = await execute(definitionOf(output), cluster, input).then(
        () => undefined,
        (e: { cause: Error }) => e.cause,
      );

      expect(error?.name).toBe('RunbookAlreadyRunningError');
      expect(error?.message).toContain('the rotation runbook (execution daily-1');
      expect(cluster.sent).toEqual([]);
    },
  );
});
