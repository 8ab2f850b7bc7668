/** Errors of the services' HTTP APIs: RFC 9457 problem details, typed. */

export interface Problem {
  status: number;
  title?: string;
  detail?: string;
}

/** A service answered with an error status (or with a body the client cannot use). */
export class ServiceError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.title ?? ''}${problem.detail ? `: ${problem.detail}` : ''}`);
    this.name = 'ServiceError';
  }
}

/** The problem an error response carries; at most 200 characters of a non-JSON body. */
export async function problemOf(res: Response): Promise<Problem> {
  const text = await res.text().catch(() => '');
  try {
    const j = JSON.parse(text) as { title?: unknown; detail?: unknown };
    return { status: res.status, title: typeof j.title === 'string' ? j.title : undefined, detail: typeof j.detail === 'string' ? j.detail : undefined };
  } catch {
    return { status: res.status, title: text.slice(0, 200) };
  }
}

/** The JSON body of a 2xx answer; ServiceError otherwise. */
export async function jsonOf<T>(res: Response): Promise<T> {
  if (!res.ok) throw new ServiceError(await problemOf(res));
  return (await res.json()) as T;
}

/** A malformed answer from a service (a field missing or of the wrong type). */
export function malformed(what: string): ServiceError {
  return new ServiceError({ status: 502, title: 'Malformed answer', detail: what });
}

export function trimUrl(url: string): string {
  return url.replace(/\/+$/, '');
}
