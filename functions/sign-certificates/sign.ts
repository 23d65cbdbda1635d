import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetCommandInvocationCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { ClusterCaMissingError, readIntermediate } from '../lib/ca-store';
import {
  ClusterNames,
  CsrRejectedError,
  entitlementsOf,
  issueLeaf,
  NodeFacts,
  parseCsrBlocks,
} from '../lib/pki';
import { InvalidInputError } from '../lib/errors';
import { outsideAgentEntitlement } from '../lib/outside-agent';
import type { CommandRef } from '../lib/ssm-run';
import { x509 } from '../lib/x509';

export interface SignEvent {
  readonly node: NodeFacts;
  /** The certificates document's `request` run on that node. */
  readonly command: CommandRef;
}

export interface SignResult {
  /** Certificates issued; 0 when every identity was still valid. */
  readonly count: number;
  readonly identities: readonly string[];
  /** base64 JSON `{ root, certificates: { identity: chain } }`, or `-` when count is 0. */
  readonly bundle: string;
}

export interface SignSettings extends ClusterNames {
  readonly intermediateSecretId: string;
  readonly validityDays: number;
}

/**
 * Reads the CSRs a node printed, checks each against what the node is
 * entitled to, and signs them. Only certificates go back; keys stay on nodes.
 */
export async function signNodeRequests(
  ssm: SSMClient,
  secrets: SecretsManagerClient,
  event: SignEvent,
  settings: SignSettings,
): Promise<SignResult> {
  const { node, command } = event;
  // The poll result keeps only a short tail; the CSRs need the whole output.
  const invocation = await ssm.send(
    new GetCommandInvocationCommand({
      CommandId: command.commandId,
      InstanceId: command.instanceId,
    }),
  );
  if (invocation.Status !== 'Success') {
    throw new Error(`${node.name}: the request command is ${invocation.Status}, not Success`);
  }
  const requests = parseCsrBlocks(invocation.StandardOutputContent ?? '');
  if (requests.size === 0) return { count: 0, identities: [], bundle: '-' };

  const intermediate = await readIntermediate(secrets, settings.intermediateSecretId);
  if (!intermediate) throw new ClusterCaMissingError(settings.intermediateSecretId);
  const entitlements = new Map(
    entitlementsOf(node, settings).map((e) => [e.identity as string, e]),
  );
  const certificates: Record<string, string> = {};
  for (const [identity, csr] of requests) {
    const wanted = entitlements.get(identity);
    if (!wanted) {
      const allowed = [...entitlements.keys()].join(', ');
      throw new CsrRejectedError(
        node.name,
        identity,
        `a ${node.tier} node may only request ${allowed}`,
      );
    }
    certificates[identity] = await issueLeaf(node.name, csr, wanted, intermediate, {
      validityDays: settings.validityDays,
    });
  }
  const bundle = Buffer.from(
    JSON.stringify({ root: intermediate.rootCertificatePem, certificates }),
  ).toString('base64');
  return { count: requests.size, identities: Object.keys(certificates), bundle };
}

/** An outside PEM agent's request: the database user it logs in as, and its CSR. */
export interface OutsideAgentRequest {
  readonly agentUser: unknown;
  readonly csr: unknown;
}

export interface OutsideAgentCertificate {
  readonly agentUser: string;
  /** The leaf and the issuing CA, PEM: what the agent presents (agent_ssl_crt). */
  readonly certificate: string;
  /** The cluster's root, PEM: what verifies the chain and the cluster's servers. */
  readonly rootCertificate: string;
  readonly serial: string;
  readonly notAfter: string;
}

/**
 * Signs the CSR of a PEM agent on a monitored server (outside the cluster):
 * the CN must be its database user, which may not be any of the cluster's own
 * identities, and the certificate is for client authentication only.
 */
export async function signOutsideAgent(
  secrets: SecretsManagerClient,
  request: OutsideAgentRequest,
  settings: Pick<SignSettings, 'intermediateSecretId' | 'validityDays'>,
): Promise<OutsideAgentCertificate> {
  const wanted = outsideAgentEntitlement(request.agentUser);
  if (typeof request.csr !== 'string' || !request.csr.includes('BEGIN CERTIFICATE REQUEST')) {
    throw new InvalidInputError(
      `csr must be a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----); got ${typeof request.csr === 'string' ? `${request.csr.length} characters without one` : JSON.stringify(request.csr)}`,
    );
  }
  const intermediate = await readIntermediate(secrets, settings.intermediateSecretId);
  if (!intermediate) throw new ClusterCaMissingError(settings.intermediateSecretId);
  const label = `outside agent ${wanted.commonName}`;
  const chain = await issueLeaf(label, request.csr.trim(), wanted, intermediate, {
    validityDays: settings.validityDays,
  });
  // The chain's first certificate is the leaf.
  const leaf = new x509.X509Certificate(
    chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + 25),
  );
  return {
    agentUser: wanted.commonName!,
    certificate: chain,
    rootCertificate: intermediate.rootCertificatePem,
    serial: leaf.serialNumber.toUpperCase(),
    notAfter: leaf.notAfter.toISOString(),
  };
}
