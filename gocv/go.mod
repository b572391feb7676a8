module github.com/skyline-go/skyline/gocv

go 1.26.8

require github.com/skyline-go/skyline v0.0.0

require (
	github.com/joho/godotenv v1.5.1 // indirect
	gocv.io/x/gocv v0.32.0
)

replace github.com/skyline-go/skyline => ../
