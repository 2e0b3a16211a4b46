/**
 * Detecting the end of a response, exactly once.
 *
 * The end is the first of `'finish'` (the last byte was handed to the socket)
 * and `'close'` (the response or its connection went away). A client abort
 * gives only `'close'`; an HTTP/2 stream cancelled by the client gives both
 * with `writableEnded` false; a normal HTTP/1.1 response gives both, even on
 * keep-alive. One shared listener function per hook (never a closure per
 * request) and a per-hook flag on the response make it cost two `on()` calls.
 */

/** The part of `http.ServerResponse` / `http2.Http2ServerResponse` this library uses. */
export interface ResponseLike {
  on(event: 'finish' | 'close', listener: () => void): unknown;
  statusCode: number;
}

/** Called once per response, with the response as its argument. */
export type ResponseEndListener<R extends ResponseLike> = (res: R) => void;

/**
 * Creates a function that arranges for `listener(res)` to run exactly once
 * when `res` ends. Each hook uses its own marker, so two independent hooks
 * (say, two monitors) on one response do not see each other.
 */
export function createResponseEndHook<R extends ResponseLike>(listener: ResponseEndListener<R>): (res: R) => void {
  const ended = Symbol('wsgi-status:ended');
  function onEvent(this: R): void {
    const marked = this as R & { [ended]?: true };
    if (marked[ended] === true) return;
    marked[ended] = true;
    listener(this);
  }
  return function watch(res: R): void {
    res.on('finish', onEvent);
    res.on('close', onEvent);
  };
}
