package pathmap

import (
	"errors"
	"reflect"
	"testing"
)

func TestNormalize(t *testing.T) {
	good := map[string]string{"cam": "/cam", "/cam/": "/cam", "/a/b": "/a/b", "x.y": "/x.y"}
	for in, want := range good {
		if got, err := Normalize(in); got != want || err != nil {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/", "a b", "a?b", "a#b", "a%20b", `a\b`, `a"b`, "a<b", "a//b", "a/./b", "a/..", "a\x01"} {
		if _, err := Normalize(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	for _, bad := range []string{"cam/whep", "whep/x", "cam/trackID=1"} {
		if _, err := Normalize(bad, "whep", "trackID="); !errors.Is(err, ErrInvalid) {
			t.Errorf("Normalize(%q, reserved) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := Normalize("cam/whepx", "whep"); err != nil {
		t.Errorf("a reserved name is a whole element: %v", err)
	}
}

func TestMap(t *testing.T) {
	var m Map[int]
	if v, ok := m.Add("/b", func() int { return 2 }); !ok || v != 2 {
		t.Fatal(v, ok)
	}
	m.Add("/a", func() int { return 1 })
	if _, ok := m.Add("/a", func() int { t.Fatal("made twice"); return 0 }); ok {
		t.Fatal("added twice")
	}
	if !reflect.DeepEqual(m.Paths(), []string{"/a", "/b"}) || !reflect.DeepEqual(m.Values(), []int{1, 2}) {
		t.Fatal(m.Paths(), m.Values())
	}
	if v, ok := m.Remove("/a"); !ok || v != 1 {
		t.Fatal(v, ok)
	}
	if _, ok := m.Get("/a"); ok {
		t.Fatal("removed path still there")
	}
}
