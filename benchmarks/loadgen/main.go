// Command loadgen is the benchmarks' compiled load client: cheap enough per request and per
// delivery that the system under test, not the client, is what a benchmark measures.
//
//	loadgen hammer    closed loop: POST as fast as C connections can, for D seconds
//	loadgen post      open loop: POST at a fixed rate across rooms, whatever the answers take
//	loadgen subscribe WebSocket clients, each subscribed to one room's messages: STOMP clients
//	                  of this project, or Centrifugo clients (its JSON protocol) for a comparison
//
// Times are wall-clock nanoseconds (the same clock in every process on the machine), so a
// post's send time and a delivery's arrival can be compared across processes. Output lines are
// space-separated fields, read by benchmarks/loadgen.py.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen hammer|post|subscribe [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "hammer":
		err = hammer(os.Args[2:])
	case "post":
		err = post(os.Args[2:])
	case "subscribe":
		err = subscribe(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// --- HTTP -------------------------------------------------------------------------------------

// A sender publishes the n-th message of a run to a room: its HTTP status (0 when no answer
// came) and the message's id (0 unless it was accepted).
type sender interface {
	send(room int64, n int, content string) (int, int64)
}

func httpClient(connections int) *http.Client {
	transport := &http.Transport{
		MaxIdleConns:        connections,
		MaxIdleConnsPerHost: connections,
		MaxConnsPerHost:     connections,
		IdleConnTimeout:     3 * time.Second, // below the servers' keep-alive timeouts (uvicorn: 5 s)
		DisableCompression:  true,
	}
	return &http.Client{Transport: transport, Timeout: 30 * time.Second}
}

// postJSON POSTs the payload as JSON; the answer's status (0 when none came) and body.
func postJSON(client *http.Client, url string, headers map[string]string, payload any) (int, []byte) {
	body, err := json.Marshal(payload)
	if err != nil {
		return 0, nil
	}
	request, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil
	}
	request.Header.Set("Content-Type", "application/json")
	for name, value := range headers {
		request.Header.Set(name, value)
	}
	response, err := client.Do(request)
	if err != nil {
		return 0, nil
	}
	answer, err := io.ReadAll(response.Body)
	response.Body.Close()
	if err != nil {
		return 0, nil
	}
	return response.StatusCode, answer
}

// poster sends `POST /command/message` as a signed-in customer; the server numbers the message.
type poster struct {
	url     string
	headers map[string]string
	client  *http.Client
}

func newPoster(url, token string, connections int) *poster {
	return &poster{url: url, headers: map[string]string{"Cookie": "jwt_token=" + token}, client: httpClient(connections)}
}

func (p *poster) send(room int64, n int, content string) (int, int64) {
	status, answer := postJSON(p.client, p.url, p.headers, map[string]any{"roomId": room, "content": content})
	if status != 200 {
		return status, 0
	}
	var parsed struct {
		Data struct {
			MessageID int64 `json:"messageId"`
		} `json:"data"`
	}
	if json.Unmarshal(answer, &parsed) != nil {
		return status, 0
	}
	return status, parsed.Data.MessageID
}

// centrifugoPublisher publishes through Centrifugo's server API (`POST /api/publish`) to the
// channel named by the room's number; the sender numbers the message (firstID + n), in its data
// as "messageId", so a subscriber reads it as it reads ours.
type centrifugoPublisher struct {
	url     string
	headers map[string]string
	firstID int64
	client  *http.Client
}

func (p *centrifugoPublisher) send(room int64, n int, content string) (int, int64) {
	id := p.firstID + int64(n)
	status, answer := postJSON(p.client, p.url, p.headers, map[string]any{
		"channel": strconv.FormatInt(room, 10),
		"data":    map[string]any{"messageId": id, "roomId": room, "content": content},
	})
	if status != 200 {
		return status, 0
	}
	var parsed struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(answer, &parsed) != nil || parsed.Error != nil {
		return 500, 0 // the API answers its errors with a 200 and an "error" object
	}
	return status, id
}

func parseRooms(text string) ([]int64, error) {
	var rooms []int64
	for _, field := range strings.Split(text, ",") {
		room, err := strconv.ParseInt(strings.TrimSpace(field), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("room %q: %w", field, err)
		}
		rooms = append(rooms, room)
	}
	if len(rooms) == 0 {
		return nil, fmt.Errorf("no rooms")
	}
	return rooms, nil
}

// hammer prints one JSON object: requests, seconds, answered ones (200) per second, their
// p50/p99 ms, and the others (non-200, or no answer).
func hammer(args []string) error {
	flags := flag.NewFlagSet("hammer", flag.ExitOnError)
	url := flags.String("url", "", "POST /command/message URL")
	token := flags.String("token", "", "the jwt_token cookie's value")
	roomList := flags.String("rooms", "", "room ids, comma-separated, taken in turn")
	connections := flags.Int("connections", 8, "connections, each one request at a time")
	seconds := flags.Float64("duration", 10, "seconds measured")
	warmup := flags.Float64("warmup", 3, "seconds of the same load before, not measured")
	flags.Parse(args)
	rooms, err := parseRooms(*roomList)
	if err != nil {
		return err
	}
	target, err := neturl.Parse(*url)
	if err != nil {
		return err
	}
	requests := make([][]byte, len(rooms)) // each room's request, prepared once
	for i, room := range rooms {
		body := fmt.Sprintf(`{"roomId":%d,"content":"hammer"}`, room)
		requests[i] = []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
			"Cookie: jwt_token=%s\r\nContent-Length: %d\r\n\r\n%s", target.RequestURI(), target.Host, *token, len(body), body))
	}
	clients := make([]*rawClient, *connections)
	for c := range clients {
		clients[c] = &rawClient{addr: target.Host}
	}
	var counter atomic.Int64
	run := func(d time.Duration) ([]time.Duration, int) {
		end := time.Now().Add(d)
		var mu sync.Mutex
		var latencies []time.Duration
		failed := 0
		var wg sync.WaitGroup
		for _, client := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				bad := 0
				for time.Now().Before(end) {
					n := counter.Add(1)
					started := time.Now()
					status := client.do(requests[int(n)%len(requests)])
					if status != 200 {
						bad++ // a quick refusal is not a fast answer: left out of the latencies
						continue
					}
					mine = append(mine, time.Since(started))
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				failed += bad
				mu.Unlock()
			}()
		}
		wg.Wait()
		return latencies, failed
	}
	run(time.Duration(*warmup * float64(time.Second)))
	started := time.Now()
	latencies, failed := run(time.Duration(*seconds * float64(time.Second)))
	took := time.Since(started).Seconds()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	result := map[string]float64{
		"requests": float64(len(latencies) + failed),
		"seconds":  took,
		"rps":      float64(len(latencies)) / took,
		"p50_ms":   percentileMs(latencies, 50),
		"p99_ms":   percentileMs(latencies, 99),
		"non_200":  float64(failed),
	}
	return json.NewEncoder(os.Stdout).Encode(result)
}

// rawClient speaks just enough HTTP/1.1 for the hammer: one keep-alive connection, requests
// written as prepared bytes, answers read by their status line and Content-Length. net/http
// costs several times the CPU per request, which on two cores the server under test lacks.
type rawClient struct {
	addr   string
	conn   net.Conn
	reader *bufio.Reader
}

// do sends one request; the answer's status, or 0 when none came (the connection is then
// dropped, and the next request opens a new one).
func (c *rawClient) do(request []byte) int {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return 0
		}
		c.conn, c.reader = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	status, keep, err := c.exchange(request)
	if err != nil || !keep {
		c.conn.Close()
		c.conn = nil
	}
	if err != nil {
		return 0
	}
	return status
}

func (c *rawClient) exchange(request []byte) (int, bool, error) {
	if _, err := c.conn.Write(request); err != nil {
		return 0, false, err
	}
	line, err := c.reader.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	fields := bytes.Fields(line)
	if len(fields) < 2 {
		return 0, false, fmt.Errorf("status line %q", line)
	}
	status, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return 0, false, err
	}
	length, keep := -1, true
	for {
		header, err := c.reader.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		header = bytes.TrimRight(header, "\r\n")
		if len(header) == 0 {
			break
		}
		name, value, _ := bytes.Cut(header, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, err
			}
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			keep = false
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, false, fmt.Errorf("an answer in %s encoding", value)
		}
	}
	if length < 0 {
		return 0, false, fmt.Errorf("an answer without Content-Length")
	}
	if _, err := c.reader.Discard(length); err != nil {
		return 0, false, err
	}
	return status, keep, nil
}

func percentileMs(sorted []time.Duration, pct float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	index := int(pct/100*float64(len(sorted))+0.5) - 1
	index = max(0, min(len(sorted)-1, index))
	return float64(sorted[index]) / float64(time.Millisecond)
}

// post prints a line per post, "room due_ns sent_ns done_ns status messageId", in the order
// they ended: when it was due on the schedule, when it went out (later when every connection
// was busy), when its answer came.
func post(args []string) error {
	flags := flag.NewFlagSet("post", flag.ExitOnError)
	url := flags.String("url", "", "POST /command/message URL")
	token := flags.String("token", "", "the jwt_token cookie's value")
	roomList := flags.String("rooms", "", "room ids, comma-separated, taken in turn")
	rate := flags.Float64("rate", 100, "posts per second")
	seconds := flags.Float64("duration", 10, "seconds of posting")
	connections := flags.Int("connections", 256, "most posts in flight at once")
	label := flags.String("label", "load", "the messages' content, before their number")
	apiKey := flags.String("centrifugo-api-key", "", "publish through Centrifugo's server API at -url with this key")
	firstID := flags.Int64("first-id", 1, "with -centrifugo-api-key: the first message's id")
	cut := flags.Bool("cut", false, "send nothing once the duration is over: posts still waiting for a connection are left out")
	flags.Parse(args)
	rooms, err := parseRooms(*roomList)
	if err != nil {
		return err
	}
	var p sender = newPoster(*url, *token, *connections)
	if *apiKey != "" {
		p = &centrifugoPublisher{
			url: *url, headers: map[string]string{"X-API-Key": *apiKey}, firstID: *firstID, client: httpClient(*connections),
		}
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	var mu sync.Mutex
	total := int(math.Round(*rate * *seconds)) // rate x duration posts, whatever the float rounding
	start := time.Now().Add(100 * time.Millisecond)
	end := start.Add(time.Duration(*seconds * float64(time.Second)))
	work := make(chan int, total)
	for n := 0; n < total; n++ {
		work <- n
	}
	close(work)
	var wg sync.WaitGroup
	for c := 0; c < *connections; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				due := start.Add(time.Duration(float64(n) / *rate * float64(time.Second)))
				time.Sleep(time.Until(due))
				if *cut && time.Now().After(end) {
					continue // a server that fell behind is measured by what it took within the duration
				}
				room := rooms[n%len(rooms)]
				sent := time.Now().UnixNano()
				status, id := p.send(room, n, *label+" "+strconv.Itoa(n))
				done := time.Now().UnixNano()
				mu.Lock()
				fmt.Fprintf(out, "%d %d %d %d %d %d\n", room, due.UnixNano(), sent, done, status, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out.Flush()
}

// --- Subscribers over WebSocket -----------------------------------------------------------------

type subscription struct {
	index  int
	token  string
	room   int64
	latest atomic.Int64 // the highest messageId received, for since-message-id on a reconnect
}

type arrivals struct {
	mu  sync.Mutex
	out *bufio.Writer
}

func (a *arrivals) record(sub int, id int64, at int64) {
	a.mu.Lock()
	fmt.Fprintf(a.out, "%d %d %d\n", sub, id, at)
	a.mu.Unlock()
}

// subscribe reads "token room" lines from -subscriptions, connects each to the -urls in turn,
// prints "ready N elapsed_ns" on stdout once all are subscribed (N subscriptions, confirmed
// elapsed_ns after the first connection began), then records arrivals to -out as
// "subscription messageId arrival_ns" until SIGTERM or SIGINT; then prints "stopped".
func subscribe(args []string) error {
	flags := flag.NewFlagSet("subscribe", flag.ExitOnError)
	urls := flags.String("urls", "", "WebSocket URLs, comma-separated, taken in turn")
	file := flags.String("subscriptions", "", `a file of "token roomId" lines`)
	outPath := flags.String("out", "", "where arrivals are written")
	concurrency := flags.Int("connect-concurrency", 64, "connections opened at once while starting")
	protocolName := flags.String("protocol", "stomp", "stomp (this project) or centrifugo (its JSON protocol)")
	flags.Parse(args)
	subs, err := readSubscriptions(*file)
	if err != nil {
		return err
	}
	speak, found := protocols[*protocolName]
	if !found {
		return fmt.Errorf("unknown protocol %q", *protocolName)
	}
	targets := strings.Split(*urls, ",")
	outFile, err := os.Create(*outPath)
	if err != nil {
		return err
	}
	defer outFile.Close()
	record := &arrivals{out: bufio.NewWriterSize(outFile, 1<<16)}
	go func() { // readers follow the file while the run goes on
		for range time.Tick(100 * time.Millisecond) {
			record.mu.Lock()
			record.out.Flush()
			record.mu.Unlock()
		}
	}()
	stop := make(chan struct{})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	var ready sync.WaitGroup
	ready.Add(len(subs))
	began := time.Now()
	gate := make(chan struct{}, *concurrency)
	var done sync.WaitGroup
	var reconnects atomic.Int64
	for i, sub := range subs {
		done.Add(1)
		go func(sub *subscription, target string) {
			defer done.Done()
			first := true
			for {
				if first {
					gate <- struct{}{}
				}
				conn, err := session(target, speak, sub, record)
				if first {
					<-gate
				}
				if err == nil {
					if first {
						ready.Done()
						first = false
					}
					err = readMessages(conn, speak, sub, record, stop)
					conn.Close()
					select {
					case <-stop:
						return
					default:
						reconnects.Add(1) // a subscription that was up and got cut
					}
				}
				fmt.Fprintf(os.Stderr, "subscription %d (room %d): %v; reconnecting\n", sub.index, sub.room, err)
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}(sub, targets[i%len(targets)])
	}
	ready.Wait()
	fmt.Printf("ready %d %d\n", len(subs), time.Since(began).Nanoseconds())
	os.Stdout.Sync()
	<-signals
	close(stop)
	done.Wait()
	record.mu.Lock()
	err = record.out.Flush()
	record.mu.Unlock()
	fmt.Printf("stopped reconnects=%d\n", reconnects.Load())
	return err
}

func readSubscriptions(path string) ([]*subscription, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var subs []*subscription
	for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("subscription line %q: want \"token roomId\"", line)
		}
		room, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, err
		}
		subs = append(subs, &subscription{index: len(subs), token: fields[0], room: room})
	}
	return subs, nil
}

// A protocol is how a subscriber speaks to one kind of server.
type protocol interface {
	subprotocols() []string
	// greeting is what a subscriber sends once connected: its credentials and its subscription.
	greeting(sub *subscription) []byte
	// handle reads one WebSocket message: it records the deliveries in it, and says whether it
	// confirmed the subscription, what answer it asks for (nil for none), and the error the
	// server reported in it.
	handle(data []byte, sub *subscription, record *arrivals, now int64) (subscribed bool, reply []byte, err error)
}

var protocols = map[string]protocol{"stomp": stomp{}, "centrifugo": centrifugo{}}

// session connects, greets, and returns once the subscription is confirmed; deliveries that
// come before the confirmation (a STOMP resubscription's missed messages) are recorded too.
func session(target string, speak protocol, sub *subscription, record *arrivals) (*websocket.Conn, error) {
	dialer := websocket.Dialer{
		Subprotocols:     speak.subprotocols(),
		HandshakeTimeout: 20 * time.Second,
		NetDial: func(network, addr string) (net.Conn, error) {
			return net.DialTimeout(network, addr, 20*time.Second)
		},
	}
	conn, _, err := dialer.Dial(target, nil)
	if err != nil {
		return nil, err
	}
	if err := conn.WriteMessage(websocket.TextMessage, speak.greeting(sub)); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		subscribed, err := receive(conn, speak, sub, record)
		if err != nil {
			conn.Close()
			return nil, err
		}
		if subscribed {
			conn.SetReadDeadline(time.Time{})
			return conn, nil
		}
	}
}

// receive reads one WebSocket message, records its deliveries and sends the answer it asks for.
func receive(conn *websocket.Conn, speak protocol, sub *subscription, record *arrivals) (bool, error) {
	_, data, err := conn.ReadMessage()
	now := time.Now().UnixNano()
	if err != nil {
		return false, err
	}
	subscribed, reply, err := speak.handle(data, sub, record, now)
	if err == nil && reply != nil {
		err = conn.WriteMessage(websocket.TextMessage, reply)
	}
	return subscribed, err
}

// readMessages records each delivery until the connection ends or stop is closed.
func readMessages(conn *websocket.Conn, speak protocol, sub *subscription, record *arrivals, stop chan struct{}) error {
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-stop:
			conn.SetReadDeadline(time.Now())
		case <-ended:
		}
	}()
	for {
		if _, err := receive(conn, speak, sub, record); err != nil {
			return err
		}
	}
}

// recordDelivery notes a message's arrival, and the highest messageId seen for a resubscription.
func recordDelivery(sub *subscription, record *arrivals, id int64, now int64) {
	if id > sub.latest.Load() {
		sub.latest.Store(id)
	}
	record.record(sub.index, id, now)
}

// stomp is this project's protocol: STOMP 1.2 over WebSocket, the token in CONNECT.
type stomp struct{}

func (stomp) subprotocols() []string { return []string{"v12.stomp"} }

// greeting sends CONNECT and SUBSCRIBE in one WebSocket message. After a first subscription,
// SUBSCRIBE carries since-message-id: the server then sends what was missed before the RECEIPT.
func (stomp) greeting(sub *subscription) []byte {
	since := ""
	if latest := sub.latest.Load(); latest > 0 {
		since = "since-message-id:" + strconv.FormatInt(latest, 10) + "\n"
	}
	return []byte("CONNECT\naccept-version:1.2\nhost:127.0.0.1\nheart-beat:0,0\njwt_token:" + sub.token + "\n\n\x00" +
		"SUBSCRIBE\nid:sub-0\ndestination:/topic/message/roomId/" + strconv.FormatInt(sub.room, 10) + "\n" +
		since + "receipt:subscribed\n\n\x00")
}

// handle reads the frames of one WebSocket message (the server packs several into one): the
// RECEIPT confirms the subscription, an ERROR frame is an error.
func (stomp) handle(data []byte, sub *subscription, record *arrivals, now int64) (bool, []byte, error) {
	subscribed := false
	for _, frame := range bytes.Split(data, []byte{0}) {
		command, body := frameCommand(frame)
		switch command {
		case "MESSAGE":
			recordDelivery(sub, record, messageID(body), now)
		case "RECEIPT":
			subscribed = true
		case "ERROR":
			return subscribed, nil, fmt.Errorf("ERROR frame: %s", strings.TrimSpace(string(frame)))
		}
	}
	return subscribed, nil, nil
}

// centrifugo is Centrifugo's JSON protocol: commands and replies are JSON objects, several to a
// WebSocket message one per line; the connection token in the connect command, the room's
// number as the channel. A reconnect subscribes again without recovery.
type centrifugo struct{}

const (
	centrifugoConnectID   = 1
	centrifugoSubscribeID = 2
)

func (centrifugo) subprotocols() []string { return nil }

func (centrifugo) greeting(sub *subscription) []byte {
	connect, _ := json.Marshal(map[string]any{"id": centrifugoConnectID, "connect": map[string]any{"token": sub.token}})
	subscribe, _ := json.Marshal(map[string]any{
		"id": centrifugoSubscribeID, "subscribe": map[string]any{"channel": strconv.FormatInt(sub.room, 10)},
	})
	return append(append(connect, '\n'), subscribe...)
}

// handle answers the server's ping (an empty object) with a pong (the same), records pushed
// publications, and reads the replies to the greeting: the subscribe reply confirms it.
func (centrifugo) handle(data []byte, sub *subscription, record *arrivals, now int64) (bool, []byte, error) {
	subscribed := false
	var reply []byte
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		switch {
		case len(line) == 0:
		case bytes.Equal(line, []byte("{}")):
			reply = []byte("{}")
		case bytes.HasPrefix(line, []byte(`{"push":`)):
			// A publication, or another push (a disconnect, say) that carries no message.
			if id := messageID(line); id > 0 {
				recordDelivery(sub, record, id, now)
			}
		default:
			var answer struct {
				ID    int `json:"id"`
				Error *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(line, &answer); err != nil {
				return subscribed, nil, fmt.Errorf("reply %q: %w", line, err)
			}
			if answer.Error != nil {
				return subscribed, nil, fmt.Errorf("reply %d: error %d %s", answer.ID, answer.Error.Code, answer.Error.Message)
			}
			subscribed = subscribed || answer.ID == centrifugoSubscribeID
		}
	}
	return subscribed, reply, nil
}

// frameCommand splits a STOMP frame (without its NUL) into its command and body; heart-beat
// newlines before a frame are skipped.
func frameCommand(frame []byte) (string, []byte) {
	frame = bytes.TrimLeft(frame, "\r\n")
	if len(frame) == 0 {
		return "", nil
	}
	line, rest, _ := bytes.Cut(frame, []byte{'\n'})
	_, body, _ := bytes.Cut(rest, []byte("\n\n"))
	return strings.TrimSuffix(string(line), "\r"), body
}

// messageID reads "messageId" from a MESSAGE body without decoding the rest of it.
func messageID(body []byte) int64 {
	_, after, found := bytes.Cut(body, []byte(`"messageId":`))
	if !found {
		return 0
	}
	after = bytes.TrimLeft(after, " ")
	end := 0
	for end < len(after) && after[end] >= '0' && after[end] <= '9' {
		end++
	}
	id, _ := strconv.ParseInt(string(after[:end]), 10, 64)
	return id
}
