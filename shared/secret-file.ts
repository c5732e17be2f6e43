/**
 * Reads a password or CA certificate named by the config. Passwords stay out of the config
 * object (only their file is there), so nothing that prints the config can print them; they
 * are read when a client is made, which also picks up a rotated password on the next connect.
 *
 *   const password = readSecretFile('DIAMOND_KAFKA_PASSWORD_FILE', config.kafka.security.sasl.passwordFile);
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.ts';

/** The file's content without its trailing newline; a missing or empty file is a ConfigError naming the setting (never the content). */
export function readSecretFile(setting: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`${setting} names ${file}, which cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, 'create it (mode 0600, readable by the platform user only) or fix the path');
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new ConfigError(`${setting} names ${file}, which is empty`, 'write the password into it');
  return value;
}

/** A PEM file's content, or undefined when the setting is unset (then the system's CAs apply). */
export function readCaFile(setting: string, file: string | null): string | undefined {
  return file === null ? undefined : readSecretFile(setting, file);
}
