package main

import (
	"bufio"
	"bytes"
	"testing"
)

func recorder() (*arrivals, *bytes.Buffer) {
	var out bytes.Buffer
	return &arrivals{out: bufio.NewWriter(&out)}, &out
}

func TestMessagesBeforeAndAfterTheReceiptInOneWebSocketMessageAreAllRecorded(t *testing.T) {
	record, out := recorder()
	sub := &subscription{index: 3}
	// What a resubscription with since-message-id gets: the missed messages, the RECEIPT, a new one.
	data := []byte("MESSAGE\nsubscription:sub-0\n\n{\"messageId\": 41, \"content\": \"a\"}\x00" +
		"\nMESSAGE\nsubscription:sub-0\n\n{\"roomId\": 1, \"messageId\":42}\x00" +
		"RECEIPT\nreceipt-id:subscribed\n\n\x00" +
		"MESSAGE\nsubscription:sub-0\n\n{\"messageId\": 43}\x00")
	subscribed, reply, err := stomp{}.handle(data, sub, record, 7)
	if err != nil || !subscribed || reply != nil {
		t.Fatalf("handle = %v, %q, %v; want true, nil, nil", subscribed, reply, err)
	}
	record.out.Flush()
	if got, want := out.String(), "3 41 7\n3 42 7\n3 43 7\n"; got != want {
		t.Fatalf("recorded %q, want %q", got, want)
	}
	if sub.latest.Load() != 43 {
		t.Fatalf("latest = %d, want 43", sub.latest.Load())
	}
}

func TestAnErrorFrameEndsTheSession(t *testing.T) {
	record, _ := recorder()
	_, _, err := stomp{}.handle([]byte("ERROR\nmessage:not allowed\n\n\x00"), &subscription{}, record, 0)
	if err == nil {
		t.Fatal("an ERROR frame was not an error")
	}
}

func TestMessageIDIsReadWithOrWithoutASpace(t *testing.T) {
	for body, want := range map[string]int64{`{"messageId": 12}`: 12, `{"a":1,"messageId":345,"b":2}`: 345, `{}`: 0} {
		if got := messageID([]byte(body)); got != want {
			t.Errorf("messageID(%s) = %d, want %d", body, got, want)
		}
	}
}

func TestCentrifugoRepliesConfirmTheSubscriptionAndPublicationsAreRecorded(t *testing.T) {
	record, out := recorder()
	sub := &subscription{index: 5}
	connected := []byte(`{"id":1,"connect":{"client":"c1","version":"6.9.1","ping":25,"pong":true}}` + "\n" +
		`{"id":2,"subscribe":{}}`)
	subscribed, reply, err := centrifugo{}.handle(connected, sub, record, 1)
	if err != nil || !subscribed || reply != nil {
		t.Fatalf("replies: handle = %v, %q, %v; want true, nil, nil", subscribed, reply, err)
	}
	pushed := []byte(`{"push":{"channel":"9","pub":{"data":{"messageId":17,"roomId":9},"offset":3}}}` + "\n" +
		`{"push":{"channel":"9","pub":{"data":{"messageId":18,"roomId":9},"offset":4}}}`)
	if subscribed, reply, err = (centrifugo{}).handle(pushed, sub, record, 2); err != nil || subscribed || reply != nil {
		t.Fatalf("pushes: handle = %v, %q, %v; want false, nil, nil", subscribed, reply, err)
	}
	record.out.Flush()
	if got, want := out.String(), "5 17 2\n5 18 2\n"; got != want {
		t.Fatalf("recorded %q, want %q", got, want)
	}
}

func TestCentrifugoPingIsAnsweredWithAPong(t *testing.T) {
	record, _ := recorder()
	_, reply, err := centrifugo{}.handle([]byte("{}"), &subscription{}, record, 0)
	if err != nil || string(reply) != "{}" {
		t.Fatalf("handle(ping) = %q, %v; want \"{}\", nil", reply, err)
	}
}

func TestACentrifugoErrorReplyEndsTheSession(t *testing.T) {
	record, _ := recorder()
	_, _, err := centrifugo{}.handle([]byte(`{"id":2,"error":{"code":103,"message":"permission denied"}}`), &subscription{}, record, 0)
	if err == nil {
		t.Fatal("an error reply was not an error")
	}
}

func TestTheCentrifugoGreetingConnectsThenSubscribesToTheRoomsChannel(t *testing.T) {
	lines := bytes.Split(centrifugo{}.greeting(&subscription{token: "t0k", room: 42}), []byte("\n"))
	want := []string{`{"connect":{"token":"t0k"},"id":1}`, `{"id":2,"subscribe":{"channel":"42"}}`}
	if len(lines) != len(want) {
		t.Fatalf("greeting has %d lines, want %d", len(lines), len(want))
	}
	for i := range want {
		if string(lines[i]) != want[i] {
			t.Errorf("line %d = %s, want %s", i, lines[i], want[i])
		}
	}
}
