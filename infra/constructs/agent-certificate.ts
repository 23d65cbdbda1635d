import { Duration } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { agentCertificateDefinition } from '../workflows/agent-certificate-definition';
import type { RunbookFunctions } from './runbook-functions';
import { runbookStateMachine } from './runbook-state-machine';

export interface AgentCertificateRunbookProps {
  readonly clusterName: string;
  readonly functions: RunbookFunctions;
}

/**
 * The agent certificate runbook (with PEM): a certificate from the cluster CA
 * for a PEM agent on a monitored server, so it logs in to the pem database
 * through the NLB with `cert` authentication. It signs and returns; it takes
 * no lock and touches no node.
 */
export class AgentCertificateRunbook extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: AgentCertificateRunbookProps) {
    super(scope, id);
    const fns = props.functions;
    this.stateMachine = runbookStateMachine(this, 'StateMachine', {
      comment: `pem-ha ${props.clusterName}: a certificate from the cluster CA for a PEM agent on a monitored server (CSR in, chain out)`,
      input: { check: fns.checkInput, runbook: 'agent-certificate' },
      definition: agentCertificateDefinition(this, {
        signCertificates: fns.signCertificates.function,
      }),
      invoked: [fns.signCertificates],
      timeout: Duration.minutes(5),
    });
  }

  /** Lets `grantee` ask for outside agents' certificates. */
  grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }
}
