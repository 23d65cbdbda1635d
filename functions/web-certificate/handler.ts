import { ACMClient } from '@aws-sdk/client-acm';
import type { CdkCustomResourceEvent, CdkCustomResourceResponse } from 'aws-lambda';
import { logger, withLambdaContext } from '../lib/logger';
import { onEvent } from './certificate';

const acm = new ACMClient({});

/** Custom resource onEvent handler: a self-signed ACM certificate for the web tier's ALB. */
export const handler = withLambdaContext(
  async (event: CdkCustomResourceEvent): Promise<CdkCustomResourceResponse> => {
    // Log only what identifies the request; never the event, the response or any key material.
    logger.info('web certificate request', {
      requestType: event.RequestType,
      dnsName: event.ResourceProperties.DnsName,
    });
    return onEvent(event, acm);
  },
);
