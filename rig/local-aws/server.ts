/**
 * One local endpoint for the AWS services the handlers and node scripts call,
 * so they reach it unchanged through AWS_ENDPOINT_URL_<SERVICE>: SSM (Run
 * Command, String parameters) and Secrets Manager (AWS JSON 1.1), Step
 * Functions (AWS JSON 1.0), EC2 (EC2 query), Elastic Load Balancing v2's
 * target health and registration, and CloudWatch's PutMetricData (AWS query).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeInstances, EC2_VERSION, ec2Error, LocalInstance } from './ec2';
import {
  changeRegistration,
  describeTargetHealth,
  ELBV2_VERSION,
  queryError,
  TargetHealthLookup,
  TargetRegistration,
} from './elbv2';
import { CLOUDWATCH_VERSION, LocalMetrics } from './cloudwatch';
import { LocalExecutions } from './sfn';
import { AgentReport, AwsError, LocalSsm } from './ssm';
import { LocalRootVolumes, RootVolumeReplacer } from './root-volumes';
import { LocalParameters } from './parameters';

export const REGION = 'local-1';
/** Where the nodes' SSM agents poll and report. */
const AGENT_PATH = '/rig-ssm-agent/';
/** How long an agent's poll is held open when nothing is queued (the agent's curl waits 30 s). */
const AGENT_POLL_HOLD_MS = 20_000;
export const ACCOUNT = '000000000000';

/** The variables that point the AWS SDKs (v3, botocore) at a LocalAws for each service it speaks. */
export function localAwsEndpoints(url: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_SSM: url,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
    AWS_ENDPOINT_URL_SFN: url,
    AWS_ENDPOINT_URL_EC2: url,
    AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2: url,
    AWS_ENDPOINT_URL_CLOUDWATCH: url,
  };
}

export interface LocalAwsOptions {
  /** Keeps secret values across runs of the rig (mode 0600). */
  readonly secretsFile?: string;
  /** Keeps Parameter Store values across runs of the rig. @default this process's only */
  readonly parametersFile?: string;
  /** The Step Functions executions every process of the rig shares. @default this process's only */
  readonly executionsFile?: string;
  /** The instances DescribeInstances sees, asked on each call. @default none */
  readonly instances?: () => readonly LocalInstance[];
  /** The target groups DescribeTargetHealth sees, by ARN (the rig's Ref). @default none */
  readonly targetHealth?: TargetHealthLookup;
  /** What RegisterTargets and DeregisterTargets do. @default - refused (no such group) */
  readonly targetRegistration?: TargetRegistration;
  /** What CreateReplaceRootVolumeTask does to an instance. @default - refused (UnsupportedOperation) */
  readonly replaceRootVolume?: RootVolumeReplacer;
}

interface StoredSecret {
  readonly name: string;
  readonly arn: string;
  value: string;
  versionId: string;
}

export class LocalAws {
  readonly ssm: LocalSsm;
  /** The executions DescribeExecution reports: the rig's runbook runner records them here. */
  readonly executions: LocalExecutions;
  /** What the nodes' collectors (PutMetricData) and the functions (EMF) published. */
  readonly metrics = new LocalMetrics();
  /** Parameter Store (String parameters). */
  readonly parameters: LocalParameters;
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly server: Server;
  private readonly rootVolumes: LocalRootVolumes;

  constructor(private readonly options: LocalAwsOptions = {}) {
    this.ssm = new LocalSsm();
    this.rootVolumes = new LocalRootVolumes(
      () => options.instances?.() ?? [],
      options.replaceRootVolume,
    );
    this.executions = new LocalExecutions(options.executionsFile);
    this.parameters = new LocalParameters(options.parametersFile, {
      region: REGION,
      accountId: ACCOUNT,
    });
    const { secretsFile } = options;
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

  /** Sets an existing secret's value as PutSecretValue does (tests lose and restore one). */
  putSecretValue(name: string, value: string): void {
    const secret = this.secret(name);
    secret.value = value;
    secret.versionId = randomUUID();
    this.persist();
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
    this.ssm.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await closed;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    if (request.url?.startsWith(AGENT_PATH)) return this.handleAgent(request, body, response);
    const requestId = randomUUID();
    response.setHeader('x-amzn-requestid', requestId);
    const authorized = Boolean(request.headers.authorization);
    const contentType = String(request.headers['content-type'] ?? '');
    if (contentType.startsWith('application/x-www-form-urlencoded')) {
      return this.handleQuery(new URLSearchParams(body), authorized, requestId, response);
    }
    const target = String(request.headers['x-amz-target'] ?? '');
    // Step Functions speaks JSON 1.0, SSM and Secrets Manager 1.1: answer in kind.
    const json = contentType.startsWith('application/x-amz-json-1.0') ? '1.0' : '1.1';
    try {
      if (!authorized)
        throw new AwsError('MissingAuthenticationToken', 'Request is missing a signature');
      const input = JSON.parse(body || '{}') as Record<string, unknown>;
      reply(response, 200, json, await this.dispatch(target, input));
    } catch (error) {
      const type = error instanceof AwsError ? error.awsType : 'InternalFailure';
      response.setHeader('x-amzn-errortype', type);
      reply(response, error instanceof AwsError ? 400 : 500, json, {
        __type: type,
        message: (error as Error).message,
      });
    }
  }

  /**
   * The nodes' agents (rig/host/ssm-agent.sh): `GET next?instance=ID` holds
   * the poll until a command is queued (204 when none came), `POST report`
   * takes one step's status and output.
   */
  private async handleAgent(
    request: IncomingMessage,
    body: string,
    response: ServerResponse,
  ): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://rig');
    try {
      if (request.method === 'GET' && url.pathname === `${AGENT_PATH}next`) {
        const hungUp = new AbortController();
        response.on('close', () => hungUp.abort());
        const message = await this.ssm.nextFor(
          url.searchParams.get('instance') ?? '',
          AGENT_POLL_HOLD_MS,
          hungUp.signal,
        );
        if (!message || response.destroyed) {
          response.writeHead(204).end();
          return;
        }
        reply(response, 200, '1.1', message);
      } else if (request.method === 'POST' && url.pathname === `${AGENT_PATH}report`) {
        this.ssm.report(JSON.parse(body) as AgentReport);
        reply(response, 200, '1.1', {});
      } else {
        reply(response, 404, '1.1', {
          message: `no agent route ${request.method} ${url.pathname}`,
        });
      }
    } catch (error) {
      reply(response, error instanceof AwsError ? 400 : 500, '1.1', {
        message: (error as Error).message,
      });
    }
  }

  /** EC2 and ELBv2: Action and Version in a form body, XML back (errors in each one's shape). */
  private async handleQuery(
    params: URLSearchParams,
    authorized: boolean,
    requestId: string,
    response: ServerResponse,
  ): Promise<void> {
    const ec2 = params.get('Version') === EC2_VERSION;
    let status = 200;
    let xml: string;
    try {
      if (!authorized)
        throw new AwsError(
          ec2 ? 'AuthFailure' : 'MissingAuthenticationToken',
          'Request is missing a signature',
        );
      xml = await this.dispatchQuery(params, requestId);
    } catch (error) {
      status = error instanceof AwsError ? 400 : 500;
      const code = error instanceof AwsError ? error.awsType : 'InternalFailure';
      xml = (ec2 ? ec2Error : queryError)(code, (error as Error).message, requestId);
    }
    response.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8' });
    response.end(xml);
  }

  private async dispatchQuery(params: URLSearchParams, requestId: string): Promise<string> {
    const action = params.get('Action');
    switch (`${params.get('Version')}/${action}`) {
      case `${EC2_VERSION}/DescribeInstances`:
        return describeInstances(params, this.options.instances?.() ?? [], requestId);
      case `${EC2_VERSION}/CreateReplaceRootVolumeTask`:
        return this.rootVolumes.create(params, requestId);
      case `${EC2_VERSION}/DescribeReplaceRootVolumeTasks`:
        return this.rootVolumes.describe(params, requestId);
      case `${CLOUDWATCH_VERSION}/PutMetricData`:
        return this.metrics.putMetricData(params, requestId);
      case `${ELBV2_VERSION}/DescribeTargetHealth`:
        return describeTargetHealth(
          params,
          this.options.targetHealth ?? (async () => undefined),
          requestId,
        );
      case `${ELBV2_VERSION}/RegisterTargets`:
      case `${ELBV2_VERSION}/DeregisterTargets`:
        return changeRegistration(
          params,
          this.options.targetRegistration ?? (async () => false),
          action === 'RegisterTargets',
          requestId,
        );
      default:
        throw new AwsError(
          'InvalidAction',
          `the rig does not implement ${action} (version ${params.get('Version')})`,
        );
    }
  }

  private async dispatch(target: string, input: Record<string, unknown>): Promise<unknown> {
    switch (target) {
      case 'AmazonSSM.SendCommand':
        return this.ssm.sendCommand(input);
      case 'AmazonSSM.GetCommandInvocation':
        return this.ssm.getCommandInvocation(input);
      case 'AmazonSSM.CancelCommand':
        return this.ssm.cancelCommand(input);
      case 'AmazonSSM.PutParameter':
        return this.parameters.put(input);
      case 'AmazonSSM.GetParameter':
        return this.parameters.get(input);
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
      case 'AWSStepFunctions.DescribeExecution':
        return this.executions.describeExecution(input);
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
    if (this.options.secretsFile)
      writeFileSync(this.options.secretsFile, JSON.stringify([...this.secrets.values()]), {
        mode: 0o600,
      });
  }
}

function reply(response: ServerResponse, status: number, json: string, body: unknown): void {
  response.writeHead(status, { 'content-type': `application/x-amz-json-${json}` });
  response.end(JSON.stringify(body));
}
