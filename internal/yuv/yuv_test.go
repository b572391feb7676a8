package yuv

import "testing"

// TestGrayIsBGRGray: a gray pixel g converts like the BGR pixel (g,g,g):
// full-range luma remapped to video range, neutral chroma. (Copying g
// straight into Y stretched the contrast: 16 showed black, 235 white.)
func TestGrayIsBGRGray(t *testing.T) {
	const w, h = 256, 2
	gray, bgr := make([]byte, w*h), make([]byte, w*h*3)
	for i := range gray {
		g := byte(i % w)
		gray[i] = g
		bgr[3*i], bgr[3*i+1], bgr[3*i+2] = g, g, g
	}
	a, b := Layout(make([]byte, Size(w, h)), w, h), Layout(make([]byte, Size(w, h)), w, h)
	if err := ToI420(Gray, gray, w, a); err != nil {
		t.Fatal(err)
	}
	if err := ToI420(BGR, bgr, w*3, b); err != nil {
		t.Fatal(err)
	}
	for x := 0; x < w; x++ {
		if d := int(a.Y[x]) - int(b.Y[x]); d < -1 || d > 1 {
			t.Fatalf("gray %d: Y %d, from BGR %d", x, a.Y[x], b.Y[x])
		}
	}
	for i := range a.U {
		if a.U[i] != 128 || a.V[i] != 128 || b.U[i] < 127 || b.U[i] > 129 {
			t.Fatalf("chroma %d: gray U,V %d,%d; BGR U %d", i, a.U[i], a.V[i], b.U[i])
		}
	}
	if a.Y[0] != 16 || a.Y[255] != 235 {
		t.Fatalf("black/white: Y %d, %d; want 16, 235", a.Y[0], a.Y[255])
	}
}

// TestRefusesOutOfRange: strides that do not fit in a C int, or buffers too
// short for the picture, are errors before any C code runs (a truncated
// stride made libyuv read far outside the buffer).
func TestRefusesOutOfRange(t *testing.T) {
	const w, h = 16, 8
	src := make([]byte, w*h*3)
	good := Layout(make([]byte, Size(w, h)), w, h)
	for _, stride := range []int{1 << 31, 1<<32 + w*3, -w * 3, 0, w*3 - 1, w * 4} {
		if err := ToI420(BGR, src, stride, good); err == nil {
			t.Errorf("ToI420 with stride %d: no error", stride)
		}
	}
	if err := ToI420(BGR, src, w*3, good); err != nil {
		t.Fatal(err)
	}
	short := good
	short.U = short.U[:3]
	bad := good
	bad.StrideV = 1 << 32
	for _, c := range []struct {
		name     string
		src, dst Planes
	}{{"short source", short, good}, {"short destination", good, short}, {"huge source stride", bad, good}, {"huge destination stride", good, bad}} {
		if err := CopyI420(c.src, c.dst); err == nil {
			t.Errorf("CopyI420 %s: no error", c.name)
		}
		if err := CopyFullRangeI420(c.src, c.dst); err == nil {
			t.Errorf("CopyFullRangeI420 %s: no error", c.name)
		}
		if err := Scale(c.src, c.dst); err == nil {
			t.Errorf("Scale %s: no error", c.name)
		}
	}
}
