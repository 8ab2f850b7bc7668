/** Builds the Delivery adapter the config names. */
import { MailboxDelivery, type Delivery } from '@umbra/client';
import { CliError } from './errors.ts';
import type { TransportConfig } from './config.ts';

export async function openTransport(config: TransportConfig): Promise<Delivery & { close?: () => unknown }> {
  switch (config.kind) {
    case 'mailbox':
      return new MailboxDelivery(config.path, 50);
    case 'hub':
      throw new CliError(`the hub transport is not wired into the CLI yet; use --mailbox (hub: ${config.url})`);
    case 'waku':
      throw new CliError('the Waku transport is not wired into the CLI yet; use --mailbox');
  }
}
