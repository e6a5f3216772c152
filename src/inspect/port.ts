/** The relay's port when none is given: the one the Stately docs use for theirs. */
export const DEFAULT_PORT = 8080;
