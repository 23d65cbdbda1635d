/**
 * One local endpoint for the AWS services the handlers and node scripts call
 * (SSM, Secrets Manager), speaking AWS JSON 1.1 as the SDKs and botocore do,
 * so they reach it unchanged through AWS_ENDPOINT_URL_<SERVICE>.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NodeExec } from '../types';
import { AwsError, LocalSsm } from './ssm';

export const REGION = 'local-1';
export const ACCOUNT = '000000000000';

interface StoredSecret {
  readonly name: string;
  readonly arn: string;
  value: string;
  versionId: string;
}

export class LocalAws {
  readonly ssm: LocalSsm;
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly server: Server;

  /** `secretsFile` keeps secret values across runs of the rig (mode 0600). */
  constructor(
    exec: NodeExec,
    private readonly secretsFile?: string,
  ) {
    this.ssm = new LocalSsm(exec);
    if (secretsFile && existsSync(secretsFile)) {
      for (const secret of JSON.parse(readFileSync(secretsFile, 'utf8')) as StoredSecret[]) {
        this.secrets.set(secret.name, secret);
      }
    }
    this.server = createServer((request, response) => void this.handle(request, response));
  }

  /** Adds a secret unless it exists already (values survive a second `up`). */
  seedSecret(name: string, value: string): void {
    if (this.secrets.has(name)) return;
    const arn = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-${randomBytes(3).toString('hex')}`;
    this.secrets.set(name, { name, arn, value, versionId: randomUUID() });
    this.persist();
  }

  secretValue(name: string): string | undefined {
    return this.secrets.get(name)?.value;
  }

  async listen(host: string, port = 0): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const address = this.server.address() as AddressInfo;
    return `http://${address.address}:${address.port}`;
  }

  async close(): Promise<void> {
    await this.ssm.settle();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = String(request.headers['x-amz-target'] ?? '');
    try {
      if (!request.headers.authorization)
        throw new AwsError('MissingAuthenticationToken', 'Request is missing a signature');
      const input = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>;
      reply(response, 200, this.dispatch(target, input));
    } catch (error) {
      const type = error instanceof AwsError ? error.awsType : 'InternalFailure';
      response.setHeader('x-amzn-errortype', type);
      reply(response, error instanceof AwsError ? 400 : 500, {
        __type: type,
        message: (error as Error).message,
      });
    }
  }

  private dispatch(target: string, input: Record<string, unknown>): unknown {
    switch (target) {
      case 'AmazonSSM.SendCommand':
        return this.ssm.sendCommand(input);
      case 'AmazonSSM.GetCommandInvocation':
        return this.ssm.getCommandInvocation(input);
      case 'secretsmanager.GetSecretValue': {
        const secret = this.secret(input.SecretId);
        return {
          ARN: secret.arn,
          Name: secret.name,
          SecretString: secret.value,
          VersionId: secret.versionId,
          VersionStages: ['AWSCURRENT'],
        };
      }
      case 'secretsmanager.PutSecretValue': {
        const secret = this.secret(input.SecretId);
        secret.value = String(input.SecretString);
        secret.versionId = String(input.ClientRequestToken ?? randomUUID());
        this.persist();
        return {
          ARN: secret.arn,
          Name: secret.name,
          VersionId: secret.versionId,
          VersionStages: ['AWSCURRENT'],
        };
      }
      default:
        throw new AwsError('UnknownOperationException', `the rig does not implement ${target}`);
    }
  }

  private secret(id: unknown): StoredSecret {
    const secret = [...this.secrets.values()].find((s) => s.name === id || s.arn === id);
    if (!secret)
      throw new AwsError(
        'ResourceNotFoundException',
        "Secrets Manager can't find the specified secret.",
      );
    return secret;
  }

  private persist(): void {
    if (this.secretsFile)
      writeFileSync(this.secretsFile, JSON.stringify([...this.secrets.values()]), { mode: 0o600 });
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
  response.end(JSON.stringify(body));
}
