package agent

import "testing"

func TestBroadcastWakesEveryWaiter(t *testing.T) {
	b := newBroadcast()
	first, second := b.C(), b.C()
	b.notify()
	<-first
	<-second
	next := b.C()
	select {
	case <-next:
		t.Fatal("a channel taken after a notify is closed before the next one")
	default:
	}
	b.notify()
	<-next
}
