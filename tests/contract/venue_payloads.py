"""Handcrafted payloads in each venue's real JSON shape (market lists, candles, tickers).

Shapes follow the venues' public REST documentation and the comments in ccxt's parsers
(binance/coinbase/kraken/okx `fetch_markets`, `fetch_ohlcv`, `fetch_ticker`). Numbers are
strings where the venue sends strings. Candle rows are built from one neutral series
[open_ms, open, high, low, close, volume] so every venue serves the same history.
"""

from __future__ import annotations

from typing import Any

Row = list[Any]

BINANCE_EXCHANGE_INFO: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 1736510400000,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
    ],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "ETHUSDT",
            "status": "TRADING",
            "baseAsset": "ETH",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "1000000.00000000",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00010000",
                    "maxQty": "9000.00000000",
                    "stepSize": "0.00010000",
                },
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True},
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
    ],
}

BINANCE_FUTURES_INFO: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 1736510400000,
    "futuresType": "U_MARGINED",
    "rateLimits": [],
    "exchangeFilters": [],
    "assets": [],
    "symbols": [],
}

COINBASE_PRODUCTS: dict[str, Any] = {
    "products": [
        {
            "product_id": "ETH-USD",
            "price": "3281.42",
            "price_percentage_change_24h": "1.2",
            "volume_24h": "151234.5",
            "volume_percentage_change_24h": "-3.1",
            "base_increment": "0.00000001",
            "quote_increment": "0.01",
            "quote_min_size": "1",
            "quote_max_size": "150000000",
            "base_min_size": "0.00000001",
            "base_max_size": "42000",
            "base_name": "Ethereum",
            "quote_name": "US Dollar",
            "watched": False,
            "is_disabled": False,
            "new": False,
            "status": "online",
            "cancel_only": False,
            "limit_only": False,
            "post_only": False,
            "trading_disabled": False,
            "auction_mode": False,
            "product_type": "SPOT",
            "quote_currency_id": "USD",
            "base_currency_id": "ETH",
            "fcm_trading_session_details": None,
            "mid_market_price": "",
            "alias": "",
            "alias_to": [],
            "base_display_symbol": "ETH",
            "quote_display_symbol": "USD",
            "view_only": False,
            "price_increment": "0.01",
            "display_name": "ETH-USD",
            "product_venue": "CBE",
            "approximate_quote_24h_volume": "496274529.31",
        }
    ],
    "num_products": 1,
}

KRAKEN_ASSET_PAIRS: dict[str, Any] = {
    "error": [],
    "result": {
        "XETHZUSD": {
            "altname": "ETHUSD",
            "wsname": "ETH/USD",
            "aclass_base": "currency",
            "base": "XETH",
            "aclass_quote": "currency",
            "quote": "ZUSD",
            "lot": "unit",
            "cost_decimals": 5,
            "pair_decimals": 2,
            "lot_decimals": 8,
            "lot_multiplier": 1,
            "leverage_buy": [2, 3, 4, 5],
            "leverage_sell": [2, 3, 4, 5],
            "fees": [[0, 0.4], [50000, 0.24]],
            "fees_maker": [[0, 0.25], [50000, 0.14]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": "0.002",
            "costmin": "0.5",
            "tick_size": "0.01",
            "status": "online",
            "long_position_limit": 3000,
            "short_position_limit": 2500,
        }
    },
}

OKX_INSTRUMENTS: dict[str, Any] = {
    "code": "0",
    "msg": "",
    "data": [
        {
            "alias": "",
            "auctionEndTime": "",
            "baseCcy": "ETH",
            "category": "1",
            "ctMult": "",
            "ctType": "",
            "ctVal": "",
            "ctValCcy": "",
            "expTime": "",
            "instFamily": "",
            "instId": "ETH-USDT",
            "instType": "SPOT",
            "lever": "10",
            "listTime": "1548133413000",
            "lotSz": "0.000001",
            "maxIcebergSz": "999999999999.0000000000000000",
            "maxLmtAmt": "20000000",
            "maxLmtSz": "999999999999",
            "maxMktAmt": "1000000",
            "maxMktSz": "1000000",
            "maxStopSz": "1000000",
            "maxTriggerSz": "999999999999.0000000000000000",
            "maxTwapSz": "999999999999.0000000000000000",
            "minSz": "0.0001",
            "optType": "",
            "quoteCcy": "USDT",
            "ruleType": "normal",
            "settleCcy": "",
            "state": "live",
            "stk": "",
            "tickSz": "0.01",
            "uly": "",
        }
    ],
}

OKX_EMPTY: dict[str, Any] = {"code": "0", "msg": "", "data": []}


def _s(x: float | str) -> str:
    if isinstance(x, str):
        return x  # a deliberately broken value passes through as sent
    return f"{x:.8f}".rstrip("0").rstrip(".")


def binance_klines(rows: list[Row], step_ms: int) -> list[Row]:
    """GET /api/v3/klines: 12 fields, prices and volumes as strings."""
    return [
        [
            r[0],
            *(_s(v) for v in r[1:6]),
            r[0] + step_ms - 1,
            _s(r[4] * r[5]),
            120 + i,
            _s(r[5] / 2),
            _s(r[4] * r[5] / 2),
            "0",
        ]
        for i, r in enumerate(rows)
    ]


def binance_ticker(symbol: str, close_ms: int) -> dict[str, Any]:
    """GET /api/v3/ticker/24hr?symbol=...."""
    return {
        "symbol": symbol,
        "priceChange": "-94.99000000",
        "priceChangePercent": "-2.813",
        "weightedAvgPrice": "3301.12000000",
        "prevClosePrice": "3376.41000000",
        "lastPrice": "3281.42000000",
        "lastQty": "0.05000000",
        "bidPrice": "3281.41000000",
        "bidQty": "12.50000000",
        "askPrice": "3281.42000000",
        "askQty": "3.20000000",
        "openPrice": "3376.41000000",
        "highPrice": "3390.00000000",
        "lowPrice": "3240.00000000",
        "volume": "412345.67000000",
        "quoteVolume": "1361234567.89000000",
        "openTime": close_ms - 86_400_000,
        "closeTime": close_ms,
        "firstId": 1700000000,
        "lastId": 1701000000,
        "count": 1000001,
    }


def coinbase_candles(rows: list[Row]) -> dict[str, Any]:
    """GET /api/v3/brokerage/market/products/{id}/candles: newest first, start in seconds."""
    ordered = sorted(rows, key=lambda r: r[0], reverse=True)
    return {
        "candles": [
            {
                "start": str(r[0] // 1000),
                "low": _s(r[3]),
                "high": _s(r[2]),
                "open": _s(r[1]),
                "close": _s(r[4]),
                "volume": _s(r[5]),
            }
            for r in ordered
        ]
    }


def coinbase_ticker(product: str, now_ms: int) -> dict[str, Any]:
    """GET /api/v3/brokerage/market/products/{id}/ticker: recent trades, no 24 h volume."""
    return {
        "trades": [
            {
                "trade_id": "512345678",
                "product_id": product,
                "price": "3281.42",
                "size": "0.05",
                "time": "2025-01-10T12:00:00.000Z",
                "side": "BUY",
                "exchange": "",
                "bid": "",
                "ask": "",
            }
        ],
        "best_bid": "3281.41",
        "best_ask": "3281.42",
    }


def kraken_ohlc(pair: str, rows: list[Row]) -> dict[str, Any]:
    """GET /0/public/OHLC: [time s, open, high, low, close, vwap, volume, count]; `last` id."""
    data = [
        [r[0] // 1000, *(_s(v) for v in r[1:5]), _s((r[2] + r[3]) / 2), _s(r[5]), 1000 + i]
        for i, r in enumerate(rows)
    ]
    last = rows[-1][0] // 1000 if rows else 0
    return {"error": [], "result": {pair: data, "last": last}}


def kraken_ticker(pair: str) -> dict[str, Any]:
    """GET /0/public/Ticker: a/b/c arrays, v = [today, last 24 h] volume."""
    return {
        "error": [],
        "result": {
            pair: {
                "a": ["3281.42000", "3", "3.000"],
                "b": ["3281.41000", "1", "1.000"],
                "c": ["3281.42000", "0.05000000"],
                "v": ["12045.12345678", "41234.56789012"],
                "p": ["3301.12345", "3299.54321"],
                "t": [21034, 65432],
                "l": ["3240.00000", "3240.00000"],
                "h": ["3390.00000", "3390.00000"],
                "o": "3376.41000",
            }
        },
    }


def okx_candles(rows: list[Row], now_ms: int, step_ms: int) -> dict[str, Any]:
    """GET /api/v5/market/candles: newest first, strings, `confirm` 0 for the open candle."""
    ordered = sorted(rows, key=lambda r: r[0], reverse=True)
    return {
        "code": "0",
        "msg": "",
        "data": [
            [
                str(r[0]),
                *(_s(v) for v in r[1:6]),
                _s(r[5] * r[4]),
                _s(r[5] * r[4]),
                "0" if r[0] + step_ms > now_ms else "1",
            ]
            for r in ordered
        ],
    }


def okx_ticker(inst: str, now_ms: int) -> dict[str, Any]:
    """GET /api/v5/market/ticker."""
    return {
        "code": "0",
        "msg": "",
        "data": [
            {
                "instType": "SPOT",
                "instId": inst,
                "last": "3281.42",
                "lastSz": "0.05",
                "askPx": "3281.42",
                "askSz": "3.2",
                "bidPx": "3281.41",
                "bidSz": "12.5",
                "open24h": "3376.41",
                "high24h": "3390",
                "low24h": "3240",
                "volCcy24h": "402345678.9",
                "vol24h": "122345.6",
                "sodUtc0": "3300.1",
                "sodUtc8": "3310.2",
                "ts": str(now_ms),
            }
        ],
    }


COINGECKO_MARKETS: list[dict[str, Any]] = [
    {
        "id": "ethereum",
        "symbol": "eth",
        "name": "Ethereum",
        "image": "https://coin-images.coingecko.com/coins/images/279/large/ethereum.png",
        "current_price": 3281.42,
        "market_cap": 395123456789,
        "market_cap_rank": 2,
        "fully_diluted_valuation": 395123456789,
        "total_volume": 21234567890,
        "high_24h": 3390.0,
        "low_24h": 3240.0,
        "price_change_24h": -94.99,
        "price_change_percentage_24h": -2.81,
        "market_cap_change_24h": -11234567890,
        "market_cap_change_percentage_24h": -2.76,
        "circulating_supply": 120450000.12,
        "total_supply": 120450000.12,
        "max_supply": None,
        "ath": 4878.26,
        "ath_change_percentage": -32.7,
        "ath_date": "2021-11-10T14:24:19.604Z",
        "atl": 0.432979,
        "atl_change_percentage": 757000.1,
        "atl_date": "2015-10-20T00:00:00.000Z",
        "roi": {"times": 40.1, "currency": "btc", "percentage": 4010.2},
        "last_updated": "2025-01-10T11:59:30.123Z",
    },
    {
        "id": "some-unknown-coin",
        "symbol": "suc",
        "name": "Some Unknown Coin",
        "current_price": 0.1,
        "market_cap": 1000000,
        "market_cap_rank": 2999,
        "total_volume": 1000,
        "circulating_supply": 10000000,
        "total_supply": 10000000,
        "max_supply": 10000000,
        "last_updated": "2025-01-10T11:59:30.123Z",
    },
    {"id": "broken", "symbol": "brk", "name": "Broken", "market_cap": "not-a-number"},
]

LLAMA_HISTORICAL_TVL: list[dict[str, Any]] = [
    {"date": 1736294400, "tvl": 61234567890.5},
    {"date": 1736380800, "tvl": 61934567890.25},
    {"date": 1736467200, "tvl": 62034567890.0},
]

LLAMA_CHAINS: list[dict[str, Any]] = [
    {
        "gecko_id": "ethereum",
        "tvl": 62034567890.0,
        "tokenSymbol": "ETH",
        "cmcId": "1027",
        "name": "Ethereum",
        "chainId": 1,
    },
    {
        "gecko_id": "arbitrum",
        "tvl": 3123456789.0,
        "tokenSymbol": "ARB",
        "cmcId": "11841",
        "name": "Arbitrum",
        "chainId": 42161,
    },
]

LLAMA_STABLECOINS: dict[str, Any] = {
    "peggedAssets": [
        {
            "id": "1",
            "name": "Tether",
            "symbol": "USDT",
            "gecko_id": "tether",
            "pegType": "peggedUSD",
            "priceSource": "defillama",
            "pegMechanism": "fiat-backed",
            "circulating": {"peggedUSD": 137123456789.12},
            "circulatingPrevDay": {"peggedUSD": 137023456789.12},
            "chains": ["Tron", "Ethereum"],
            "price": 1.0,
        },
        {
            "id": "2",
            "name": "USD Coin",
            "symbol": "USDC",
            "gecko_id": "usd-coin",
            "pegType": "peggedUSD",
            "pegMechanism": "fiat-backed",
            "circulating": {"peggedUSD": 45123456789.5},
            "chains": ["Ethereum", "Solana"],
            "price": 1.0,
        },
        {
            "id": "50",
            "name": "Euro Coin",
            "symbol": "EURC",
            "pegType": "peggedEUR",
            "circulating": {"peggedEUR": 90123456.0},
            "chains": ["Ethereum"],
            "price": 1.03,
        },
        {
            "id": "173",
            "name": "USDX",
            "symbol": "USDX",
            "pegType": "peggedUSD",
            "circulating": {"peggedUSD": 612000000.0},
            "chains": ["Ethereum", "BSC"],
            "price": 0.9998,
        },
        {
            "id": "19",
            "name": "Kava USDX",
            "symbol": "usdx",
            "pegType": "peggedUSD",
            "circulating": {"peggedUSD": 1250000.0},
            "chains": ["Kava"],
            "price": 0.71,
        },
        {
            "id": "165",
            "name": "Gold Token Without Price",
            "symbol": "GLDX",
            "pegType": "peggedVAR",
            "circulating": {"peggedVAR": 1000.0},
            "chains": ["Ethereum"],
        },
    ],
}

ETHERSCAN_GAS: dict[str, Any] = {
    "status": "1",
    "message": "OK",
    "result": {
        "LastBlock": "21593421",
        "SafeGasPrice": "4.123",
        "ProposeGasPrice": "4.5",
        "FastGasPrice": "5.25",
        "suggestBaseFee": "4.0123",
        "gasUsedRatio": "0.51,0.49,0.62,0.44,0.55",
    },
}

ETHERSCAN_DAILY_TX: dict[str, Any] = {
    "status": "1",
    "message": "OK",
    "result": [
        {"UTCDate": "2025-01-08", "unixTimeStamp": "1736294400", "transactionCount": 1234567},
        {"UTCDate": "2025-01-09", "unixTimeStamp": "1736380800", "transactionCount": 1198765},
    ],
}

ETHERSCAN_RATE_LIMITED: dict[str, Any] = {
    "status": "0",
    "message": "NOTOK",
    "result": "Max rate limit reached, please use API Key for higher rate limit",
}
