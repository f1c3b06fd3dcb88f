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
	subscribed, err := handleFrames(data, sub, record, 7)
	if err != nil || !subscribed {
		t.Fatalf("handleFrames = %v, %v; want true, nil", subscribed, err)
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
	_, err := handleFrames([]byte("ERROR\nmessage:not allowed\n\n\x00"), &subscription{}, record, 0)
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
