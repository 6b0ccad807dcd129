//go:build !race

package main

// raceDetector says the tests run under the race detector, which makes timing figures meaningless.
const raceDetector = false
