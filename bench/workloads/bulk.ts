/** How long a ceiling thread holds results before it posts them in bulk (a module of its own: the
 * ceilings' worker modules start listening when loaded, so they cannot import one another). */
export const BULK_MS = 1;
