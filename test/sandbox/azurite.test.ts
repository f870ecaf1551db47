import { QueueClient } from '@azure/storage-queue';

describe('Azurite from npm', () => {
  it('accepts the official QueueClient (send, receive, delete)', async () => {
    const connectionString = process.env.TEST_STORAGE_CONNECTION_STRING!;
    const queue = new QueueClient(connectionString, `azurite-smoke-${Date.now()}`);
    await queue.create();
    await queue.sendMessage(Buffer.from('{"hello":"world"}').toString('base64'));
    const received = await queue.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 30 });
    expect(received.receivedMessageItems).toHaveLength(1);
    const item = received.receivedMessageItems[0]!;
    expect(JSON.parse(Buffer.from(item.messageText, 'base64').toString())).toEqual({ hello: 'world' });
    expect(item.dequeueCount).toBe(1);
    await queue.deleteMessage(item.messageId, item.popReceipt);
    const props = await queue.getProperties();
    expect(props.approximateMessagesCount).toBe(0);
    await queue.delete();
  });
});
