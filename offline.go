package skyline

// Defaults for the zero values of OfflineCard.
const (
	DefaultOfflineWidth  = 1280
	DefaultOfflineHeight = 720
	DefaultOfflineFPS    = 2
)

// OfflineCard configures the picture a served stream (rtsp.Stream,
// webrtc.Stream) plays while it has no live picture: before the first
// Start, during a warm-up, after Stop, after the producer went away. It
// shows the stream's path, its state and the time, at a low frame rate,
// every picture a keyframe carrying its SPS and PPS; viewers stay
// connected and the live stream resumes at its next keyframe, in the same
// RTP session (mediamtx's "always available" paths, done in the server).
// The zero value is valid.
type OfflineCard struct {
	// Width and Height of the card until the stream's first session; then
	// the card takes the size of the last live picture. Default 1280x720.
	// Give the stream's own size: an RTSP viewer must reconnect when the
	// picture size changes (a WebRTC viewer need not).
	Width, Height int
	// FPS is the card's frame rate. Default 2.
	FPS float64
	// Encoder encodes the card. Give the SkyLine's Config.Encoder, so that
	// the card has the live stream's profile (a browser negotiates one).
	// Default: the default encoder.
	Encoder Encoder
	// Title replaces the stream's path on the card.
	Title string
}

// WithDefaults returns the card with its zero fields set to the defaults.
func (c OfflineCard) WithDefaults() OfflineCard {
	if c.Width == 0 || c.Height == 0 {
		c.Width, c.Height = DefaultOfflineWidth, DefaultOfflineHeight
	}
	if c.FPS == 0 {
		c.FPS = DefaultOfflineFPS
	}
	return c
}

// Validate checks the card's fields (an error wrapping ErrInvalidConfig).
func (c OfflineCard) Validate() error {
	c = c.WithDefaults()
	if c.Width < 16 || c.Height < 16 || c.Width > MaxDimension || c.Height > MaxDimension || c.Width%2 != 0 || c.Height%2 != 0 {
		return configErr("OfflineCard %dx%d: want even sizes 16..%d", c.Width, c.Height, MaxDimension)
	}
	if c.FPS < 0.5 || c.FPS > 30 {
		return configErr("OfflineCard.FPS %g: want 0.5..30", c.FPS)
	}
	return nil
}
