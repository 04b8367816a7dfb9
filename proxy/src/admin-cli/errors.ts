/**
 * How the admin commands fail, one class each with its exit status: 2 for a mistake in how
 * the command was called (flags, environment, input file), fixed without touching the
 * control plane; 1 for what the control plane answered or for not reaching it.
 */

/** The command line, environment or an input file is wrong; the help says how to fix it. */
export class CliUsageError extends Error {
  readonly code = 'PROXY_ERR_CLI_USAGE';
  readonly exitCode = 2;
  override readonly name = 'CliUsageError';
}

/**
 * The control plane refused the request. `body` is its answer exactly as sent, printed
 * unchanged so scripts and people see the API's own code, message and field names.
 */
export class AdminApiError extends Error {
  readonly code = 'PROXY_ERR_CLI_API';
  readonly exitCode = 1;
  override readonly name = 'AdminApiError';
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(body.trim() === '' ? `the control plane answered HTTP ${status} with no body` : body);
  }
}

/** No usable answer: connection refused, DNS, timeout, or something that is not the control plane. */
export class ControlPlaneUnreachableError extends Error {
  readonly code = 'PROXY_ERR_CLI_UNREACHABLE';
  readonly exitCode = 1;
  override readonly name = 'ControlPlaneUnreachableError';
}
