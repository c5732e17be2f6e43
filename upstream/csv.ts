/**
 * CSV fields of one record (RFC 4180: quoted fields, "" for a quote, delimiters and line
 * breaks inside quotes). The file loader feeds it physical lines and appends the next line
 * while a quote is still open.
 */

/** The fields of `text`, or null when a quoted field is still open (the record continues on the next line). */
export function splitCsvRecord(text: string, delimiter = ','): string[] | null {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (quoted) {
      if (char === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += char;
      }
    } else if (char === '"' && field.trim() === '') {
      field = '';
      quoted = true;
    } else if (char === delimiter) {
      fields.push(field);
      field = '';
    } else {
      field += char;
    }
    i += 1;
  }
  if (quoted) return null;
  fields.push(field);
  return fields;
}

/** A header row → the field names, trimmed; empty or repeated names are reported. */
export function readCsvHeader(fields: readonly string[]): { names: string[]; problems: string[] } {
  const names = fields.map((name) => name.trim());
  const problems: string[] = [];
  names.forEach((name, index) => {
    if (name === '') problems.push(`column ${index + 1} has no name`);
    else if (names.indexOf(name) !== index) problems.push(`column "${name}" appears twice`);
  });
  return { names, problems };
}
