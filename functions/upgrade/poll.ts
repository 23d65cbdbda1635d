/** One look in a Wait/Choice loop: the deadline set on the first look travels with the state. */
export interface Poll {
  readonly ready: boolean;
  readonly deadline: number;
  readonly detail: string;
}

/** How long each wait may last before the run halts. */
export const BOUNDS_SECONDS = { target: 300, member: 600, leader: 300 } as const;

/** One look: throws `timedOut` once the bound has passed without `ready`. */
export function look(
  now: number,
  deadline: number | undefined,
  boundSeconds: number,
  ready: boolean,
  detail: string,
  timedOut: (message: string) => Error,
): Poll {
  const until = deadline || now + boundSeconds * 1000;
  if (!ready && now > until) throw timedOut(`${detail} (gave up after ${boundSeconds} s)`);
  return { ready, deadline: until, detail };
}
