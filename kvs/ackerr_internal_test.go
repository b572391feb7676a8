package kvs

import (
	"strings"
	"testing"
)

// Acknowledgement errors: every id of the service has a text, and the
// retry decision is the producer SDK's (serviceCallResultRetry in the PIC's
// StreamEvent.c): content, stream and KMS errors are final, everything
// else, unknown ids included, is retried.
func TestAckErrors(t *testing.T) {
	final := []int{4001, 4002, 4004, 4005, 4006, 4007, 4008, 4009, 4010, 4011, 4012, 4500, 4501, 4502, 4503, 4504, 4505, 4506, 4507}
	retried := []int{4000, 4003, 5000, 5001, 4013, 4999, 5002, 9999}
	for _, id := range final {
		if (&FragmentError{Ack: Ack{ErrorID: id}}).retriable() {
			t.Errorf("error %d retried", id)
		}
		if AckErrorText(id) == "unknown error" {
			t.Errorf("error %d has no text", id)
		}
	}
	for _, id := range retried {
		if !(&FragmentError{Ack: Ack{ErrorID: id}}).retriable() {
			t.Errorf("error %d given up; the SDK retries it", id)
		}
	}
	if got := AckErrorText(4012); !strings.Contains(got, "tracks") {
		t.Errorf("4012: %q", got)
	}
	e := &FragmentError{Ack: Ack{FragmentTimecode: 5, ErrorID: 4013, ErrorCode: "SOMETHING_NEW"}}
	if !strings.Contains(e.Error(), "SOMETHING_NEW") {
		t.Errorf("unknown id's ErrorCode missing from %q", e.Error())
	}
}
