/**
 * JSON text as people write it: a leading byte-order mark is allowed (editors on Windows add
 * one), and a syntax error is placed by line and column. Node 20's `JSON.parse` says
 * "Unexpected token '}', ... is not valid JSON" without saying where, so a small scanner
 * finds the place when the parse fails.
 */

/** Where JSON text stops being JSON, and why. */
export interface JsonSyntaxError {
  /** 1-based. */
  line: number;
  /** 1-based, in characters. */
  column: number;
  message: string;
}

export type JsonParse = { ok: true; value: unknown } | { ok: false; error: JsonSyntaxError };

/** Parses JSON text; a failure says where (line and column) and what was expected there. */
export function parseJson(text: string): JsonParse {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return { ok: true, value: JSON.parse(body) };
  } catch (error) {
    const found = locate(body) ?? { offset: body.length, message: (error as Error).message };
    return { ok: false, error: { ...lineAndColumn(body, found.offset), message: found.message } };
  }
}

/** The 1-based line and column of `offset` in `text`. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

class Stop {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

/** The first syntax error of `text` by the JSON grammar (RFC 8259), or undefined if none. */
function locate(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  const stop = (message: string, at = i): never => {
    throw new Stop(at, message);
  };
  const got = (): string => {
    if (i >= text.length) return 'the end of the file';
    const ch = text[i] as string;
    return ch < ' ' ? JSON.stringify(ch) : `'${ch}'`;
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const string = () => {
    const open = i++;
    while (i < text.length) {
      const ch = text[i] as string;
      if (ch === '"') {
        i++;
        return;
      }
      if (ch < ' ')
        stop(`expected '"' to close the string, got ${got()} (write \\n for a line break)`);
      if (ch === '\\') {
        const next = text[i + 1];
        if (next === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6)))
            stop('expected four hex digits after \\u');
          i += 6;
        } else if (next !== undefined && '"\\/bfnrt'.includes(next)) i += 2;
        else
          stop(
            `expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), got \\${next ?? ''}`,
          );
        continue;
      }
      i++;
    }
    stop("expected '\"' to close the string that begins here, got the end of the file", open);
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else stop(`expected a value, got ${got()}`);
  };
  const value = (): void => {
    space();
    const ch = text[i];
    if (ch === '{') object();
    else if (ch === '[') array();
    else if (ch === '"') string();
    else if (ch === 't') literal('true');
    else if (ch === 'f') literal('false');
    else if (ch === 'n') literal('null');
    else {
      const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
      number.lastIndex = i;
      const match = number.exec(text);
      if (match === null) stop(`expected a value, got ${got()}`);
      i += (match as RegExpExecArray)[0].length;
    }
  };
  const object = () => {
    i++;
    space();
    if (text[i] === '}') {
      i++;
      return;
    }
    for (;;) {
      space();
      if (text[i] !== '"') {
        if (text[i] === '}')
          stop("expected a property after ',', got '}' (JSON has no trailing commas)");
        stop(`expected a property name in double quotes, got ${got()}`);
      }
      string();
      space();
      if (text[i] !== ':') stop(`expected ':' after the property name, got ${got()}`);
      i++;
      value();
      space();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return;
      }
      stop(`expected ',' or '}' after a property value, got ${got()}`);
    }
  };
  const array = () => {
    i++;
    space();
    if (text[i] === ']') {
      i++;
      return;
    }
    for (;;) {
      space();
      if (text[i] === ']')
        stop("expected a value after ',', got ']' (JSON has no trailing commas)");
      value();
      space();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return;
      }
      stop(`expected ',' or ']' after an array element, got ${got()}`);
    }
  };
  try {
    value();
    space();
    if (i < text.length) stop(`expected the end of the file after the JSON value, got ${got()}`);
    return undefined;
  } catch (error) {
    if (error instanceof Stop) return { offset: error.offset, message: error.message };
    // Nesting too deep for the scanner's stack: JSON.parse's own message, placed at the end.
    return undefined;
  }
}
