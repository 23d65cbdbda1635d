import { ListExecutionsCommand, type SFNClient } from '@aws-sdk/client-sfn';

/** Running executions of one state machine other than `exceptId` (at most 10 pages). */
export async function otherRunningExecutions(
  sfn: SFNClient,
  stateMachineArn: string,
  exceptId?: string,
): Promise<string[]> {
  const others: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 10; page++) {
    const answer = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', nextToken: token }),
    );
    others.push(
      ...(answer.executions ?? [])
        .filter((e) => e.executionArn !== exceptId)
        .map((e) => e.executionArn ?? '?'),
    );
    token = answer.nextToken;
    if (!token) break;
  }
  return others;
}
