module github.com/skyline-go/skyline/gocv

go 1.26.0

require github.com/skyline-go/skyline v0.0.0

require (
	github.com/pion/transport/v5 v5.1.4 // indirect
	golang.org/x/image v0.46.0 // indirect
)

require (
	github.com/bluenviron/gortsplib/v5 v5.6.5 // indirect
	github.com/bluenviron/mediacommon/v2 v2.9.5 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/pion/logging v0.2.4 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	github.com/pion/rtcp v1.2.20 // indirect
	github.com/pion/rtp v1.10.6 // indirect
	github.com/pion/sdp/v3 v3.0.20 // indirect
	github.com/pion/srtp/v3 v3.1.3 // indirect
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

require (
	github.com/joho/godotenv v1.5.1 // indirect
	gocv.io/x/gocv v0.32.0
)

replace github.com/skyline-go/skyline => ../
