//go:build browser

// The operator page in a real browser: `make test-browser` (called by `make test`) installs
// Debian's chromium when it is missing and runs this file's tests with -tags browser.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
)

// chromium finds the browser: $CHROMIUM, else chromium on the PATH.
func chromium(t *testing.T) string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on the PATH and $CHROMIUM is not set: `make test-browser` installs Debian's chromium")
	return ""
}

// browser starts headless chromium with the flags this closed network needs (no background
// connections to the outside).
func browser(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1300),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// figure reads a number the page shows ("1,234" → 1234).
func figure(t *testing.T, s string) int {
	n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(s), ",", ""))
	require.NoError(t, err, "the page shows %q where a number belongs", s)
	return n
}

// The page shows what /status says, is read-only until the operator token is entered, and an
// approval clicked on it reaches the target: one DELETE more, at the simulator.
func TestOperatorPageInABrowser(t *testing.T) {
	sim, w := startOneDeleteWorker(t, 3)
	js := w.jetStream(t)
	final := collectOutcomeLog(t, js)
	publishChange := func(id string, ch events.Change) { publishEvent(t, js, events.NewEvent(id, "/hr/test", ch)) }
	for i := range 12 {
		publishChange(fmt.Sprintf("hire-%d", i), events.Change{Object: "User", Operation: events.OpCreate,
			Key: map[string]any{"userName": fmt.Sprintf("hire%d@example.com", i)}, Attributes: map[string]any{"title": "Engineer"}})
	}
	for i := range 3 {
		publishChange(fmt.Sprintf("leave-%d", i), events.Change{Object: "User", Operation: events.OpDelete,
			Key: map[string]any{"userName": fmt.Sprintf("leaver%d@example.com", i)}})
	}
	publishChange("bad-1", events.Change{Object: "Printer", Operation: events.OpCreate, Key: map[string]any{"name": "p1"}})
	// 12 creates, 1 delete allowed, 1 dead letter: 14 final outcomes; 2 deletes held.
	require.Eventually(t, func() bool { return final.count() == 14 }, 30*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		_, held := apiCall(t, w, "GET", "/parked?hold=delete", "", nil)
		return held["total"] == 2.0
	}, 20*time.Second, 100*time.Millisecond)
	deletes := sim.Stats().Requests["DELETE /scim/v2/Users/{id}"]
	require.Equal(t, 1, deletes)

	var st struct {
		Worker   string               `json:"worker"`
		Consumer events.ConsumerStats `json:"consumer"`
		Target   struct {
			Breaker string `json:"breaker"`
			Limit   int    `json:"concurrencyLimit"`
		} `json:"target"`
	}
	resp, err := http.Get(w.httpURL + "/status")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()

	b := browser(t)
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.TextContent(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return strings.TrimSpace(v)
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.Evaluate[string](js))
		require.NoError(t, err, js)
		return v
	}
	require.NoError(t, chromedp.Do(b,
		chromedp.Navigate(w.httpURL+"/"),
		chromedp.WaitReady(chromedp.CSS(`body[data-loaded="true"]`)),
	))
	assert.Equal(t, int(st.Consumer.Received), figure(t, text("#received")), "received")
	assert.Equal(t, int(st.Consumer.ByStatus[events.StatusSucceeded]), figure(t, text("#succeeded")), "succeeded")
	assert.Equal(t, int(st.Consumer.ByStatus[events.StatusDeadLettered]), figure(t, text("#deadlettered")), "dead-lettered")
	assert.Equal(t, int(st.Consumer.ByStatus[events.StatusHeld]), figure(t, text("#held")), "held")
	assert.Equal(t, 13, figure(t, text("#succeeded")), "12 creates and the allowed delete")
	assert.Equal(t, st.Target.Limit, figure(t, text("#limit")))
	assert.Equal(t, st.Worker, text("#worker"))
	assert.Equal(t, "breaker "+st.Target.Breaker, text("#breaker"))
	assert.Equal(t, "2 held", text("#held-total"))
	assert.Equal(t, "1 dead letter(s)", text("#dlq-total"))
	assert.Equal(t, "1 replica(s), 8 partitions", text("#pool-summary"))
	assert.Equal(t, "8", eval(`document.querySelectorAll("#partition-grid .cell").length + ""`))
	assert.Contains(t, text("#mode"), "read-only", "without the token the page is read-only")
	assert.Equal(t, "true", eval(`document.querySelector("#held-rows button").disabled + ""`), "actions are disabled without the token")

	// Enter the token, approve the first held delete: the simulator receives its DELETE.
	require.NoError(t, chromedp.Do(b,
		chromedp.SendKeys(chromedp.CSS("#token"), testOperatorToken),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`document.getElementById("token").dispatchEvent(new Event("change"))`)(ctx, tg)
			return err
		}),
		chromedp.WaitEnabled(chromedp.CSS("#held-rows button")),
	))
	assert.Equal(t, "operator", text("#mode"))
	// Clicked from the page's own script: the click lands on the button as it is, even if a
	// refresh rebuilt the table since chromedp looked it up.
	eval(`document.querySelector("#held-rows button.primary").click(); "clicked"`)
	require.Eventually(t, func() bool { return sim.Stats().Requests["DELETE /scim/v2/Users/{id}"] == deletes+1 }, 20*time.Second, 50*time.Millisecond,
		"the approval clicked on the page reached the target")
	require.Eventually(t, func() bool { return final.count() == 15 }, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return text("#held-total") == "1 held" }, 15*time.Second, 200*time.Millisecond,
		"the page shows the approval's effect")

	// The search box shows a key's provisioning log.
	require.NoError(t, chromedp.Do(b,
		chromedp.SendKeys(chromedp.CSS("#history-key"), "userName=hire3@example.com"),
		chromedp.Click(chromedp.CSS("#history-form button")),
		chromedp.WaitReady(chromedp.CSS("#history-out .now")),
	))
	assert.Regexp(t, `^now: in the target as id [0-9a-f-]+: last written at .* by event hire-3 \(Create\)$`, text("#history-out .now"))
	assert.Contains(t, text("#history-out ol"), "POST Users → 201")

	png, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	out := os.Getenv("SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "operator-page.png")
	}
	require.NoError(t, os.WriteFile(out, png, 0o644))
	t.Logf("screenshot of the operator page: %s (%d bytes)", out, len(png))
}
