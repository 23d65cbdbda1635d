/** Names the functions publish under and the alarms watch (shared by both sides). */
export const CERTIFICATE_METRICS = {
  namespace: 'PemHa/Certificates',
  /** Powertools adds it as the `service` dimension of every metric. */
  service: 'pem-ha',
  daysToExpiry: 'DaysToExpiry',
} as const;
