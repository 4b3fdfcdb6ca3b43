// The master's single event queue (nginx's discipline: signal handlers only
// enqueue). Handlers run one at a time, to completion, in arrival order; an
// event pushed while a handler runs waits for it.
export class EventQueue<E> {
  private readonly queue: E[] = [];
  private running = false;

  constructor(private readonly handler: (event: E) => void) {}

  push(event: E): void {
    this.queue.push(event);
    if (this.running) return;
    this.running = true;
    try {
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) this.handler(next);
    } finally {
      this.running = false;
    }
  }
}
