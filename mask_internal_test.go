package skyline

import "testing"

func TestMaskSecrets(t *testing.T) {
	in := `appsrc ! kvssink stream-name=a access-key=AKIAXXXX secret-key="s e/c\"ret" session-token=tok123 aws-region=us-east-1 ! fakesink`
	got := RedactLaunch(in)
	want := `appsrc ! kvssink stream-name=a access-key=**** secret-key=**** session-token=**** aws-region=us-east-1 ! fakesink`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
