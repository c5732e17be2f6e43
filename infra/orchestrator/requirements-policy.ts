/**
 * What a use case's requirements.txt may ask pip for: packages by name (with versions,
 * extras and markers) from the configured package index, nothing else. Lines that switch the
 * index or trust another host, install from a VCS, a URL or a local path, or pull in other
 * files would let tenant code choose what runs at deploy time; they are refused (naming the
 * line and the option) unless DIAMOND_USECASE_ALLOW_PIP_OPTIONS=1.
 */
import { DiamondError } from '../../shared/errors.ts';

/** pip options that change where packages come from or what else is read. */
const REFUSED_OPTIONS = [
  '-i', '--index-url', '--extra-index-url', '--no-index', '-f', '--find-links', '--trusted-host',
  '-r', '--requirement', '-c', '--constraint', '-e', '--editable',
] as const;

/** A requirement that is a location rather than a name: VCS, URL, file or a path. */
const LOCATION = /^(?:(?:git|hg|svn|bzr)\+|https?:\/\/|ftp:\/\/|file:|\.{1,2}\/|\/|~)/i;
/** PEP 508 direct reference: `name @ url`. */
const DIRECT_REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?\s*@/;

/** The refused option of one normalized requirement line, or null when the line is a plain requirement. */
export function refusedPipOption(line: string): string | null {
  const first = line.split(/[\s=]/)[0] ?? '';
  for (const option of REFUSED_OPTIONS) {
    // `-ihttps://…` and `--index-url=…` are spelled without a space too.
    if (first === option || (option.startsWith('--') ? first.startsWith(`${option}=`) : first.startsWith(option) && !first.startsWith('--'))) return option;
  }
  if (line.startsWith('-')) return first; // any other pip option: not a package
  if (LOCATION.test(line)) return /^[a-z]+\+/i.exec(line)?.[0] ?? /^(?:https?|ftp):\/\/|^file:/i.exec(line)?.[0] ?? 'a local path';
  if (DIRECT_REFERENCE.test(line)) return '@ (direct URL reference)';
  return null;
}

/** The use case's requirements asked pip for more than packages from the index. */
export class PipOptionRefusedError extends DiamondError {
  readonly line: string;
  readonly option: string;

  constructor(usecase: string, line: string, option: string) {
    super(`refused to deploy '${usecase}': requirements.txt line '${line}' uses ${option}, which lets a use case choose where code is installed from`, {
      code: 'DIAMOND_USECASE_PIP_OPTION_REFUSED',
      hint: 'list packages by name and version only (e.g. humanize==4.9.0), from the platform\'s package index; an operator may allow pip options with DIAMOND_USECASE_ALLOW_PIP_OPTIONS=1',
    });
    this.line = line;
    this.option = option;
  }
}

/** Throws PipOptionRefusedError for the first refused line (normalized lines: readRequirements). */
export function assertPlainRequirements(usecase: string, requirements: readonly string[], allowPipOptions: boolean): void {
  if (allowPipOptions) return;
  for (const line of requirements) {
    const option = refusedPipOption(line);
    if (option !== null) throw new PipOptionRefusedError(usecase, line, option);
  }
}
