/**
 * A storage call whose "not there" (404) is an answer, not a failure: a point read of a row or
 * queue that may not exist yet, a delete of something already gone. Any other error is thrown.
 */
export async function unlessMissing<T>(pending: Promise<T>): Promise<T | undefined> {
  try {
    return await pending;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}
